// SPDX-License-Identifier: MIT
// `cfgreg watch` run as a child process on real files: its event lines, errors and endings.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cfgreg/registry.hpp"
#include "corpus.hpp"

extern char** environ;

namespace {

using cfgreg_test::corpus;
using cfgreg_test::corpus_present;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string cli = CFGREG_CLI_PATH;
constexpr auto patience = 30s;  // generous: the suite also runs under sanitizers

/// A fresh folder under the system's temporary directory, removed at the end.
struct temp_dir {
    fs::path path;
    explicit temp_dir(const std::string& name)
        : path(fs::temp_directory_path() /
               ("cfgreg_test_cli_watch_" + std::to_string(::getpid()) + "_" + name)) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_in_place(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

void write_and_rename(const std::string& path, const std::string& text) {
    write_in_place(path + ".tmp", text);
    fs::rename(path + ".tmp", path);
}

/// The raw JSON text of the member `name` of a one-line JSON object, or nothing.
std::optional<std::string> field(const std::string& line, const std::string& name) {
    const std::string tag = "\"" + name + "\":";
    std::size_t at = 0;
    // Skip matches inside string values: a member name follows '{' or ','.
    for (;; ++at) {
        at = line.find(tag, at);
        if (at == std::string::npos) return std::nullopt;
        if (at > 0 && (line[at - 1] == '{' || line[at - 1] == ',')) break;
    }
    const std::size_t begin = at + tag.size();
    std::size_t i = begin;
    int depth = 0;
    bool in_string = false;
    for (; i < line.size(); ++i) {
        const char c = line[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
            if (!in_string && depth == 0) return line.substr(begin, i + 1 - begin);
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[')
            ++depth;
        else if (c == '}' || c == ']') {
            if (depth == 0) break;
            if (--depth == 0) return line.substr(begin, i + 1 - begin);
        } else if (c == ',' && depth == 0)
            break;
    }
    return line.substr(begin, i - begin);
}

bool is_event(const std::string& line, const std::string& event, const std::string& key = {}) {
    if (field(line, "event") != "\"" + event + "\"") return false;
    return key.empty() || field(line, "key") == "\"" + key + "\"";
}

std::string quoted(const std::string& text) {
    return cfgreg::value(text).to_json();
}

/// `cfgreg` run with its standard output on a pipe; stopped (SIGKILL) at the end if still up.
class cli_process {
  public:
    explicit cli_process(const std::vector<std::string>& args,
                         const std::vector<std::string>& extra_env = {}) {
        REQUIRE_FALSE(cli.empty());
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        out_ = fds[0];
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);

        std::vector<std::string> storage{cli};
        storage.insert(storage.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (std::string& s : storage)
            argv.push_back(s.data());
        argv.push_back(nullptr);
        std::vector<std::string> env_storage(extra_env);
        for (char** e = environ; *e != nullptr; ++e)
            env_storage.emplace_back(*e);
        std::vector<char*> envp;
        for (std::string& s : env_storage)
            envp.push_back(s.data());
        envp.push_back(nullptr);

        const int rc =
            ::posix_spawn(&pid_, cli.c_str(), &actions, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        REQUIRE(rc == 0);
    }

    ~cli_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(out_);
    }

    /// The next output line that satisfies `match`, waiting at most `patience` in
    /// all; fails the test, showing every line read, when none comes.
    std::string wait_for(const std::string& what,
                         const std::function<bool(const std::string&)>& match) {
        const auto deadline = std::chrono::steady_clock::now() + patience;
        for (;;) {
            const std::size_t eol = buffer_.find('\n');
            if (eol != std::string::npos) {
                std::string line = buffer_.substr(0, eol);
                buffer_.erase(0, eol + 1);
                seen_ += line + "\n";
                if (match(line)) return line;
                continue;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !read_some(static_cast<int>(left.count()))) {
                FAIL("no line for " << what << "; lines so far:\n" << seen_);
            }
        }
    }

    /// Sends `sig` (when non-zero) and returns the exit status, waiting at most `patience`.
    int finish(int sig = SIGTERM) {
        if (sig != 0) ::kill(pid_, sig);
        const auto deadline = std::chrono::steady_clock::now() + patience;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) FAIL("cfgreg watch did not exit");
            read_some(10);  // keep the pipe drained while waiting
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    const std::string& seen() const { return seen_; }

  private:
    /// Appends what arrives within `timeout_ms`; false at end of output or on timeout.
    bool read_some(int timeout_ms) {
        pollfd p{out_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return false;
        char chunk[4096];
        const ssize_t n = ::read(out_, chunk, sizeof chunk);
        if (n <= 0) return false;
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int out_ = -1;
    std::string buffer_;
    std::string seen_;
};

}  // namespace

TEST_CASE("cli_watch: --json prints loaded then a line per added or changed or removed key",
          "[cli_watch]") {
    temp_dir dir("events");
    const std::string path = dir.file("app.toml");
    write_in_place(path, "a = 1\n[t]\nb = \"x\"\nwhen = 1979-05-27T07:32:00Z\n");
    cli_process watch({"watch", "--json", "--for", "120", path});

    const std::string loaded =
        watch.wait_for("loaded", [](auto& l) { return is_event(l, "loaded"); });
    CHECK(field(loaded, "files") == "[" + quoted(path) + "]");
    CHECK(field(loaded, "keys") == "3");
    CHECK(field(loaded, "generation") == "1");

    // A write in place: one value changes and one appears.
    write_in_place(path, "a = 2\n[t]\nb = \"x\"\nwhen = 1979-05-27T07:32:00Z\nc = true\n");
    const std::string changed =
        watch.wait_for("a changed", [](auto& l) { return is_event(l, "changed", "a"); });
    CHECK(field(changed, "old") == "1");
    CHECK(field(changed, "new") == "2");
    CHECK(field(changed, "generation") == "2");
    CHECK(field(changed, "source") == quoted(path + ":1:5"));
    const std::string added =
        watch.wait_for("t.c added", [](auto& l) { return is_event(l, "added", "t.c"); });
    CHECK(field(added, "new") == "true");
    CHECK_FALSE(field(added, "old"));

    // Rename over the file, as most editors save: a key goes, a date-time changes.
    write_and_rename(path, "a = 2\n[t]\nwhen = 1980-01-01T00:00:00Z\nc = true\n");
    const std::string removed =
        watch.wait_for("t.b removed", [](auto& l) { return is_event(l, "removed", "t.b"); });
    CHECK(field(removed, "old") == "\"x\"");
    CHECK_FALSE(field(removed, "new"));
    CHECK(field(removed, "generation") == "3");
    CHECK(field(removed, "source") == quoted(path));
    const std::string when =
        watch.wait_for("t.when changed", [](auto& l) { return is_event(l, "changed", "t.when"); });
    CHECK(field(when, "old") == "\"1979-05-27T07:32:00Z\"");
    CHECK(field(when, "new") == "\"1980-01-01T00:00:00Z\"");

    CHECK(watch.finish(SIGTERM) == 0);
}

TEST_CASE("cli_watch: a bad edit prints its line and column and the next good edit applies",
          "[cli_watch]") {
    temp_dir dir("errors");
    const std::string path = dir.file("app.toml");
    write_in_place(path, "a = 1\n");
    cli_process watch({"watch", "--json", "--for", "120", path});
    watch.wait_for("loaded", [](auto& l) { return is_event(l, "loaded"); });

    write_in_place(path, "a = 1\nb = = 2\n");
    const std::string error = watch.wait_for("error", [](auto& l) { return is_event(l, "error"); });
    CHECK(field(error, "source") == quoted(path));
    CHECK(field(error, "line") == "2");
    CHECK(field(error, "column") == "5");
    CHECK(field(error, "message").value_or("\"\"").size() > 2);

    // The bad version never applied: the change is from the last good value.
    write_and_rename(path, "a = 5\n");
    const std::string changed =
        watch.wait_for("a changed", [](auto& l) { return is_event(l, "changed", "a"); });
    CHECK(field(changed, "old") == "1");
    CHECK(field(changed, "new") == "5");
    CHECK(watch.seen().find("\"b\"") == std::string::npos);
    CHECK(watch.finish(SIGINT) == 0);
}

TEST_CASE("cli_watch: secrets print as <secret> and --env and --set overlay the files",
          "[cli_watch]") {
    temp_dir dir("overlays");
    const std::string path = dir.file("app.toml");
    write_in_place(path, "[db]\npassword = \"hunter2\"\nport = 1\n");
    cli_process watch({"watch", "--json", "--for", "120", "--secret", "db.password", "--env",
                       "CFGREG_TW", "--set", "extra=7", path},
                      {"CFGREG_TW__DB__PORT=9"});
    const std::string loaded =
        watch.wait_for("loaded", [](auto& l) { return is_event(l, "loaded"); });
    CHECK(field(loaded, "keys") == "3");

    // The port is overridden by the environment: its edit in the file changes nothing.
    write_and_rename(path, "[db]\npassword = \"hunter3\"\nport = 2\n");
    const std::string secret = watch.wait_for(
        "db.password changed", [](auto& l) { return is_event(l, "changed", "db.password"); });
    CHECK(field(secret, "old") == "\"<secret>\"");
    CHECK(field(secret, "new") == "\"<secret>\"");
    write_and_rename(path, "z = 1\n[db]\npassword = \"hunter3\"\nport = 2\n");
    watch.wait_for("z added", [](auto& l) { return is_event(l, "added", "z"); });
    CHECK(watch.seen().find("hunter") == std::string::npos);
    CHECK(watch.seen().find("db.port") == std::string::npos);
    CHECK(watch.finish() == 0);
}

TEST_CASE("cli_watch: the human form prints one readable line per event", "[cli_watch]") {
    temp_dir dir("human");
    const std::string path = dir.file("app.toml");
    write_in_place(path, "a = 1\n");
    cli_process watch({"watch", "--for", "120", path});
    watch.wait_for("loaded", [](auto& l) { return l.starts_with("loaded 1 keys from 1 file"); });
    write_in_place(path, "a = 2\nb = \"x\"\n");
    watch.wait_for("a changed", [&](auto& l) {
        return l == "changed a: 1 -> 2  (generation 2, " + path + ":1:5)";
    });
    write_in_place(path, "b = [\n");
    watch.wait_for("error", [&](auto& l) { return l.starts_with("error " + path + ":"); });
    CHECK(watch.finish() == 0);
}

TEST_CASE("cli_watch: --for and SIGINT and SIGTERM end it with status 0 and bad usage with 64",
          "[cli_watch]") {
    temp_dir dir("exit");
    const std::string path = dir.file("app.toml");
    write_in_place(path, "a = 1\n");
    {
        cli_process watch({"watch", "--json", "--for", "0.2", path});
        watch.wait_for("loaded", [](auto& l) { return is_event(l, "loaded"); });
        CHECK(watch.finish(0) == 0);
    }
    {
        cli_process watch({"watch", path});
        watch.wait_for("loaded", [](auto& l) { return l.starts_with("loaded"); });
        CHECK(watch.finish(SIGINT) == 0);
    }
    cli_process help({"--help"});
    help.wait_for("watch in --help", [](auto& l) { return l.starts_with("  watch [--json]"); });
    CHECK(help.finish(0) == 0);
    CHECK(cli_process({"watch"}).finish(0) == 64);
    CHECK(cli_process({"watch", "--for", "soon", path}).finish(0) == 64);
}

TEST_CASE("cli_watch: each real corpus file loads with its key count and reports an edit",
          "[cli_watch]") {
    if (!corpus_present("real")) return;
    int files = 0;
    for (const auto& entry : fs::directory_iterator(corpus + "/real")) {
        if (!entry.is_regular_file()) continue;
        const std::string name = entry.path().filename().string();
        INFO(name);
        temp_dir dir("corpus_" + std::to_string(files++));
        const std::string copy = dir.file(name);  // the corpus itself is never written
        fs::copy_file(entry.path(), copy);
        cfgreg::registry expected;
        REQUIRE(expected.load_file(copy));

        cli_process watch({"watch", "--json", "--for", "300", copy});
        const std::string loaded =
            watch.wait_for("loaded", [](auto& l) { return is_event(l, "loaded"); });
        CHECK(field(loaded, "keys") == std::to_string(expected.keys().size()));

        // A key put before the first table is a top-level key, whatever the file holds.
        std::ostringstream original;
        original << std::ifstream(copy, std::ios::binary).rdbuf();
        write_and_rename(copy, "cfgreg_watch_probe = 1\n" + original.str());
        const std::string added = watch.wait_for(
            "the probe added", [](auto& l) { return is_event(l, "added", "cfgreg_watch_probe"); });
        CHECK(field(added, "new") == "1");
        CHECK(watch.finish() == 0);
    }
    CHECK(files >= 3);
}
