// SPDX-License-Identifier: MIT
// The cfgreg command-line tool run as a child process: check, get, dump and their exit codes.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cfgreg/registry.hpp"
#include "corpus.hpp"

namespace {

using cfgreg_test::corpus;
using cfgreg_test::corpus_present;

const std::string cli = CFGREG_CLI_PATH;

struct run_result {
    int code = -1;
    std::string out;  // stdout and stderr, merged
};

run_result run(const std::string& args) {
    run_result r;
    FILE* p = ::popen((cli + " " + args + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    std::array<char, 4096> buf{};
    for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;)
        r.out.append(buf.data(), n);
    const int status = ::pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string write_temp(const std::string& name, const std::string& text) {
    const auto dir = std::filesystem::temp_directory_path() / "cfgreg_test_cli";
    std::filesystem::create_directories(dir);
    const auto path = dir / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
}

}  // namespace

TEST_CASE("cli: --help prints usage and exits 0", "[cli]") {
    REQUIRE_FALSE(cli.empty());
    const auto r = run("--help");
    CHECK(r.code == 0);
    CHECK(r.out.find("usage: cfgreg") != std::string::npos);
    CHECK(run("").code == 64);
    CHECK(run("frobnicate").code == 64);
    CHECK(run("get --bogus x").code == 64);
}

TEST_CASE("cli: check exits 0 on good files and 1 with file:line:column per error", "[cli]") {
    const auto good = write_temp("good.toml", "[a]\nb = 1\n");
    const auto bad1 = write_temp("bad1.toml", "[server]\nname = \"beta\"\nport = = 1\n");
    const auto bad2 = write_temp("bad2.toml", "x = [1,,]\n");
    CHECK(run("check " + good).code == 0);
    const auto r = run("check " + good + " " + bad1 + " " + bad2);
    CHECK(r.code == 1);
    CHECK(r.out.find(bad1 + ":3:8: ") != std::string::npos);
    CHECK(r.out.find(bad2 + ":1:") != std::string::npos);
}

TEST_CASE("cli: get prints a TOML literal and exits 2 when missing", "[cli]") {
    const auto base = write_temp("base.toml",
                                 "[server]\nport = 8080\nhost = \"h\"\n"
                                 "[[s]]\nx = 1.0\n");
    const auto over = write_temp("over.toml", "[server]\nport = 8081\n");
    auto r = run("get " + base + " " + over + " server.port");
    CHECK(r.code == 0);
    CHECK(r.out == "8081\n");
    CHECK(run("get " + base + " server.host").out == "\"h\"\n");
    CHECK(run("get " + base + " 's[0].x'").out == "1.0\n");
    CHECK(run("get " + base + " server").out == "{ host = \"h\", port = 8080 }\n");
    CHECK(run("get " + base + " server.nope").code == 2);
    CHECK(run("get /nonexistent.toml server.port").code == 1);
}

TEST_CASE("cli: get with a file and no KEY says the KEY is missing", "[cli]") {
    // The file's path used to be read as the key, and reported as an invalid key path.
    const auto base = write_temp("lone.toml", "port = 1\n");
    const auto r = run("get " + base);
    CHECK(r.code == 64);
    CHECK(r.out.find("get needs a KEY after the files: `" + base + "` is a file") !=
          std::string::npos);
}

TEST_CASE("cli: --env and --set overlay the files in that order", "[cli]") {
    const auto base = write_temp("env.toml", "[server]\nport = 8080\n");
    CHECK(run("get --env CFGREG_T " + base + " server.port").out == "8080\n");
    CHECK(run("get " + base + " server.port --env CFGREG_T").out == "8080\n");
    const auto with_env = "CFGREG_T__SERVER__PORT=9090 " + cli;
    FILE* p = ::popen((with_env + " get --env CFGREG_T " + base + " server.port").c_str(), "r");
    std::array<char, 64> buf{};
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), p);
    ::pclose(p);
    CHECK(std::string(buf.data(), n) == "9090\n");
    CHECK(run("get --set server.port=1 " + base + " server.port").out == "1\n");
    CHECK(run("get --set 'server.name=plain text' " + base + " server.name").out ==
          "\"plain text\"\n");
    CHECK(run("get --set novalue " + base + " server.port").code == 64);
}

TEST_CASE("cli: secrets are never printed", "[cli]") {
    const auto f = write_temp("secret.toml", "[db]\npassword = \"hunter2\"\n");
    const auto dump = run("dump --secret db.password " + f);
    CHECK(dump.code == 0);
    CHECK(dump.out.find("hunter2") == std::string::npos);
    const auto get = run("get --secret db " + f + " db.password");
    CHECK(get.code == 1);
    CHECK(get.out.find("hunter2") == std::string::npos);
    // Fault reproduced: a table or the root holding a secret was printed whole.
    for (const std::string key : {"db", "''"}) {
        const auto parent = run("get --secret db.password " + f + " " + key);
        CHECK(parent.code == 1);
        CHECK(parent.out.find("hunter2") == std::string::npos);
    }
}

TEST_CASE("cli: dump of each valid toml-test file loads back to the same values", "[cli]") {
    if (!corpus_present("toml-test")) return;
    const std::string suite = corpus + "/toml-test/tests/";
    std::ifstream list(suite + "files-toml-1.0.0");
    int done = 0;
    for (std::string line; std::getline(list, line);) {
        if (!line.starts_with("valid/") || !line.ends_with(".toml")) continue;
        INFO(line);
        const auto dumped = run("dump '" + suite + line + "'");
        REQUIRE(dumped.code == 0);
        cfgreg::registry original;
        REQUIRE(original.load_file(suite + line));
        cfgreg::registry again;
        const auto loaded = again.load_string(dumped.out, "dump");
        if (!loaded) FAIL(loaded.error().message << "\n" << dumped.out);
        CHECK(again.dump(cfgreg::dump_format::tagged_json) ==
              original.dump(cfgreg::dump_format::tagged_json));
        ++done;
    }
    CHECK(done > 100);
}

TEST_CASE("cli: dump --format json prints the merged configuration", "[cli]") {
    const auto f = write_temp("json.toml", "a = 1\nb = 1.0\nc = 1979-05-27\n");
    const auto r = run("dump --format json " + f);
    CHECK(r.code == 0);
    CHECK(r.out == "{\"a\":1,\"b\":1.0,\"c\":\"1979-05-27\"}\n");
    CHECK(run("dump --format yaml " + f).code == 64);
}

TEST_CASE("cli: dump prints a large real lock file", "[cli]") {
    if (!corpus_present("real")) return;
    const auto big = run("dump '" + corpus + "/real/cargo-Cargo.lock.toml'");
    CHECK(big.code == 0);
    CHECK(big.out.find("name = \"zmij\"") != std::string::npos);
}
