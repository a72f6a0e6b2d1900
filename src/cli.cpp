// SPDX-License-Identifier: MIT
// The `cfgreg` command-line tool: check, get and dump TOML configuration with overlays.
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cfgreg/registry.hpp"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_invalid = 1;  // a file does not parse or cannot be read; a secret asked for
constexpr int exit_missing = 2;  // `get`: the key has no value
constexpr int exit_usage = 64;   // sysexits.h EX_USAGE

constexpr const char* usage_text = R"(usage: cfgreg <command> [options] ...

commands:
  check FILE...                 parse each file; print file:line:column: message per error
  get FILE... KEY               print KEY's effective value as a TOML literal
  dump [--format F] FILE...     print the merged configuration (F: toml, json, tagged-json)

options (every command):
  --env PREFIX       overlay variables PREFIX__A__B=value as key a.b (repeatable)
  --set KEY=VALUE    overlay a runtime value; VALUE is a TOML literal, else a string
  --secret KEY       never print KEY or anything under it (repeatable)
  -h, --help         print this help

Files load in the order given; later files override earlier ones, then --env, then --set.

exit status: 0 success; 1 invalid input (parse or read error, or a secret key asked for);
2 `get` found no value; 64 usage error.
)";

struct options {
    std::string command;
    std::vector<std::string> positional;
    std::vector<std::string> env_prefixes;
    std::vector<std::pair<std::string, std::string>> sets;
    std::vector<std::string> secrets;
    std::string format = "toml";
    bool help = false;
};

int usage_error(const std::string& message) {
    std::cerr << "cfgreg: " << message << "\n(run `cfgreg --help` for usage)\n";
    return exit_usage;
}

/// Parses argv; returns an exit code on a usage error.
std::optional<int> parse_args(int argc, char** argv, options& o) {
    bool only_positional = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const auto next = [&](std::string& out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        std::string param;
        if (only_positional || arg.empty() || arg[0] != '-' || arg == "-") {
            if (o.command.empty())
                o.command = std::string(arg);
            else
                o.positional.emplace_back(arg);
        } else if (arg == "--") {
            only_positional = true;
        } else if (arg == "-h" || arg == "--help") {
            o.help = true;
        } else if (arg == "--env") {
            if (!next(param)) return usage_error("--env needs a PREFIX");
            o.env_prefixes.push_back(param);
        } else if (arg == "--set") {
            if (!next(param)) return usage_error("--set needs KEY=VALUE");
            const std::size_t eq = param.find('=');
            if (eq == std::string::npos) return usage_error("--set needs KEY=VALUE: " + param);
            o.sets.emplace_back(param.substr(0, eq), param.substr(eq + 1));
        } else if (arg == "--secret") {
            if (!next(param)) return usage_error("--secret needs a KEY");
            o.secrets.push_back(param);
        } else if (arg == "--format") {
            if (!next(param)) return usage_error("--format needs toml, json or tagged-json");
            o.format = param;
        } else if (arg.starts_with("--format=")) {
            o.format = std::string(arg.substr(9));
        } else {
            return usage_error("unknown option " + std::string(arg));
        }
    }
    return std::nullopt;
}

void print_failure(const cfgreg::failure& f) {
    std::cerr << (f.where.source.empty() ? std::string("cfgreg") : f.where.to_string()) << ": "
              << f.message << '\n';
}

/// Loads files and overlays into `reg`; returns an exit code on failure.
std::optional<int> load_all(cfgreg::registry& reg, const std::vector<std::string>& files,
                            const options& o) {
    for (const std::string& s : o.secrets) {
        if (auto r = reg.mark_secret(s); !r) return print_failure(r.error()), exit_invalid;
    }
    bool failed = false;
    for (const std::string& f : files) {
        if (auto r = reg.load_file(f); !r) {
            print_failure(r.error());
            failed = true;
        }
    }
    if (failed) return exit_invalid;
    for (const std::string& prefix : o.env_prefixes) {
        if (auto r = reg.load_env(prefix); !r) return print_failure(r.error()), exit_invalid;
    }
    for (const auto& [key, text] : o.sets) {
        auto literal = cfgreg::parse_value(text);
        auto r = reg.set(key, literal ? std::move(*literal) : cfgreg::value(text));
        if (!r) return print_failure(r.error()), exit_usage;
    }
    return std::nullopt;
}

int run_check(const options& o) {
    if (o.positional.empty()) return usage_error("check needs at least one FILE");
    int code = exit_ok;
    for (const std::string& f : o.positional) {
        cfgreg::registry reg;
        if (auto r = reg.load_file(f); !r) {
            print_failure(r.error());
            code = exit_invalid;
        }
    }
    if (code != exit_ok) return code;
    cfgreg::registry reg;
    if (auto failed = load_all(reg, {}, o)) return *failed;
    return exit_ok;
}

int run_get(const options& o) {
    if (o.positional.empty()) return usage_error("get needs a KEY");
    const std::vector<std::string> files(o.positional.begin(), o.positional.end() - 1);
    const std::string& key = o.positional.back();
    cfgreg::registry reg;
    if (auto failed = load_all(reg, files, o)) return *failed;
    auto v = reg.read<cfgreg::value>(key);
    if (!v) {
        print_failure(v.error());
        return v.code() == cfgreg::errc::missing ? exit_missing : exit_usage;
    }
    if (reg.is_secret(key)) {
        std::cerr << "cfgreg: key `" << key << "` is secret; its value is not printed\n";
        return exit_invalid;
    }
    std::cout << v->to_toml() << '\n';
    return exit_ok;
}

int run_dump(const options& o) {
    cfgreg::dump_format format;
    if (o.format == "toml")
        format = cfgreg::dump_format::toml;
    else if (o.format == "json")
        format = cfgreg::dump_format::json;
    else if (o.format == "tagged-json")
        format = cfgreg::dump_format::tagged_json;
    else
        return usage_error("unknown format " + o.format);
    cfgreg::registry reg;
    if (auto failed = load_all(reg, o.positional, o)) return *failed;
    std::string text = reg.dump(format);
    if (format != cfgreg::dump_format::toml) text += '\n';
    std::cout << text;
    return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    if (auto code = parse_args(argc, argv, o)) return *code;
    if (o.help) {
        std::cout << usage_text;
        return exit_ok;
    }
    if (o.command.empty()) return usage_error("no command given");
    try {
        if (o.command == "check") return run_check(o);
        if (o.command == "get") return run_get(o);
        if (o.command == "dump") return run_dump(o);
    } catch (const std::exception& e) {
        std::cerr << "cfgreg: " << e.what() << '\n';
        return exit_invalid;
    }
    return usage_error("unknown command " + o.command);
}
