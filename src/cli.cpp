// SPDX-License-Identifier: MIT
// The `cfgreg` command-line tool: check, get, dump and watch TOML configuration with overlays.
#include <signal.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <mutex>
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
  watch [--json] [--for S] FILE...
                                print a summary of the merged configuration, then a line per
                                added, changed or removed key and per error as the files
                                change, until SIGINT or SIGTERM (or for S seconds)

options (every command):
  --env PREFIX       overlay variables PREFIX__A__B=value as key a.b (repeatable)
  --set KEY=VALUE    overlay a runtime value; VALUE is a TOML literal, else a string
  --secret KEY       never print KEY or anything under it (repeatable)
  -h, --help         print this help

Files load in the order given; later files override earlier ones, then --env, then --set.
`watch` keeps running when a file fails to read, parse or validate: it reports the error and
keeps the file's last good content (none, if it never loaded), and applies the next good edit.
`watch --json` prints one JSON object per line: values as JSON, date-times as strings, secret
values as "<secret>"; no "old" when added, no "new" when removed; line and column 0 if unknown.
  {"event":"loaded","files":[F,...],"keys":N,"generation":G}
  {"event":"added"|"changed"|"removed","key":K,"old":V,"new":V,"generation":G,"source":S}
  {"event":"error","source":S,"line":L,"column":C,"code":E,"message":M}

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
    bool json = false;                  // watch --json
    std::optional<double> for_seconds;  // watch --for
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
            if (!next(param) || param.empty()) return usage_error("--env needs a PREFIX");
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
        } else if (arg == "--json") {
            o.json = true;
        } else if (arg == "--for") {
            if (!next(param)) return usage_error("--for needs SECONDS");
            char* end = nullptr;
            const double seconds = std::strtod(param.c_str(), &end);
            if (param.empty() || *end != '\0' || !(seconds >= 0) || seconds > 1e9)
                return usage_error("--for needs a number of seconds: " + param);
            o.for_seconds = seconds;
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
    // `get FILE` alone: with no file, --env or --set nothing could hold the key, so the
    // last argument is a file given without its KEY.
    std::error_code ec;
    if (o.positional.size() == 1 && o.env_prefixes.empty() && o.sets.empty() &&
        std::filesystem::is_regular_file(o.positional.front(), ec))
        return usage_error("get needs a KEY after the files: `" + o.positional.front() +
                           "` is a file");
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
    // A table or array that holds a secret is not printed either.
    const cfgreg::snapshot s = reg.snapshot();
    for (const std::string& under : s.keys(key)) {
        if (s.is_secret(under)) {
            std::cerr << "cfgreg: `" << key << "` holds secret key `" << under
                      << "`; its value is not printed (`cfgreg dump` masks secrets)\n";
            return exit_invalid;
        }
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

// ---- watch ------------------------------------------------------------------------------------

/// Prints `watch` events one line at a time, flushed, from any thread. Events that
/// arrive before the `loaded` line are held back, so that it always comes first;
/// changes that the summary already includes are dropped.
class event_printer {
  public:
    explicit event_printer(bool json) : json_(json) {}

    void change(const cfgreg::change_event& e) {
        std::string line;
        if (json_) {
            line = "{\"event\":\"" + std::string(cfgreg::to_string(e.kind)) +
                   "\",\"key\":" + json_string(e.key);
            if (e.old_value) line += ",\"old\":" + json_value(*e.old_value, e.secret);
            if (e.new_value) line += ",\"new\":" + json_value(*e.new_value, e.secret);
            line += ",\"generation\":" + std::to_string(e.generation) +
                    ",\"source\":" + json_string(e.source) + "}";
        } else {
            line = std::string(cfgreg::to_string(e.kind)) + " " + e.key + ": ";
            if (e.old_value) line += toml_value(*e.old_value, e.secret);
            if (e.old_value && e.new_value) line += " -> ";
            if (e.new_value) line += toml_value(*e.new_value, e.secret);
            line += "  (generation " + std::to_string(e.generation) + ", " + e.source + ")";
        }
        emit(std::move(line), e.generation);
    }

    void error(const cfgreg::error& e) {
        const cfgreg::source_position& w = e.where();
        std::string line;
        if (json_) {
            line = "{\"event\":\"error\",\"source\":" + json_string(w.source) +
                   ",\"line\":" + std::to_string(w.line) +
                   ",\"column\":" + std::to_string(w.column) +
                   ",\"code\":" + json_string(to_string(e.code())) +
                   ",\"message\":" + json_string(e.message()) + "}";
        } else {
            line =
                "error " + (w.source.empty() ? std::string() : w.to_string() + ": ") + e.message();
        }
        emit(std::move(line), std::nullopt);
    }

    /// Prints the summary of `s`, then the events held back that came after it.
    void loaded(const std::vector<std::string>& files, const cfgreg::snapshot& s) {
        std::string line;
        if (json_) {
            line = "{\"event\":\"loaded\",\"files\":[";
            for (std::size_t i = 0; i < files.size(); ++i) {
                if (i != 0) line += ',';
                line += json_string(files[i]);
            }
            line += "],\"keys\":" + std::to_string(s.size()) +
                    ",\"generation\":" + std::to_string(s.generation()) + "}";
        } else {
            line = "loaded " + std::to_string(s.size()) + " keys from " +
                   std::to_string(files.size()) + (files.size() == 1 ? " file" : " files") +
                   " (generation " + std::to_string(s.generation()) + "); watching";
            for (const std::string& f : files)
                line += " " + f;
        }

        std::lock_guard lock(mu_);
        loaded_generation_ = s.generation();
        write_locked(line);
        for (auto& [held, generation] : held_) {
            if (!generation || *generation > *loaded_generation_) write_locked(held);
        }
        held_.clear();
    }

  private:
    static std::string json_string(std::string_view text) { return cfgreg::value(text).to_json(); }
    static std::string json_value(const cfgreg::value& v, bool secret) {
        return secret ? json_string("<secret>") : v.to_json();
    }
    static std::string toml_value(const cfgreg::value& v, bool secret) {
        return secret ? "<secret>" : v.to_toml();
    }

    /// `generation` is a change's, to be compared with the summary's; none for errors.
    void emit(std::string line, std::optional<std::uint64_t> generation) {
        std::lock_guard lock(mu_);
        if (!loaded_generation_) {
            held_.emplace_back(std::move(line), generation);
        } else if (!generation || *generation > *loaded_generation_) {
            write_locked(line);
        }
    }

    void write_locked(const std::string& line) {
        std::cout << line << '\n' << std::flush;  // scripts read the lines as they come
    }

    const bool json_;
    std::mutex mu_;
    std::optional<std::uint64_t> loaded_generation_;  // guarded by mu_; set by `loaded`
    std::vector<std::pair<std::string, std::optional<std::uint64_t>>> held_;  // guarded by mu_
};

/// Waits for SIGINT or SIGTERM, or `seconds` when given; the signals must be blocked
/// in every thread. Returns the signal, or 0 on timeout.
int wait_for_stop(const sigset_t& stop_signals, std::optional<double> seconds) {
    if (!seconds) {
        for (;;) {
            int sig = 0;
            if (sigwait(&stop_signals, &sig) == 0) return sig;
        }
    }
    timespec deadline{};
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    const double whole = std::floor(*seconds);
    deadline.tv_sec += static_cast<std::time_t>(whole);
    deadline.tv_nsec += static_cast<long>((*seconds - whole) * 1e9);
    if (deadline.tv_nsec >= 1'000'000'000) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1'000'000'000;
    }
    for (;;) {
        timespec now{};
        clock_gettime(CLOCK_MONOTONIC, &now);
        timespec left{deadline.tv_sec - now.tv_sec, deadline.tv_nsec - now.tv_nsec};
        if (left.tv_nsec < 0) {
            left.tv_sec -= 1;
            left.tv_nsec += 1'000'000'000;
        }
        if (left.tv_sec < 0) return 0;
        const int sig = sigtimedwait(&stop_signals, nullptr, &left);
        if (sig > 0) return sig;
        if (errno == EAGAIN) return 0;  // EINTR: wait again for the rest
    }
}

int run_watch(const options& o) {
    if (o.positional.empty()) return usage_error("watch needs at least one FILE");

    // Block the stop signals before the watch starts its thread, so that the thread
    // inherits the mask and only `wait_for_stop` receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    cfgreg::registry reg;
    event_printer printer(o.json);
    reg.on_error([&](const cfgreg::error& e) { printer.error(e); });
    if (auto failed = load_all(reg, {}, o)) return *failed;
    cfgreg::subscription changes = reg.subscribe_batch([&](const cfgreg::change_batch& batch) {
        for (const cfgreg::change_event& e : batch.changes)
            printer.change(e);
    });

    std::vector<std::filesystem::path> files(o.positional.begin(), o.positional.end());
    cfgreg::watch_handle watch = reg.watch(files);
    printer.loaded(o.positional, reg.snapshot());

    wait_for_stop(stop_signals, o.for_seconds);
    watch.stop();  // joins the watch's thread: nothing prints after this
    changes.unsubscribe();
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
        if (o.command == "watch") return run_watch(o);
    } catch (const std::exception& e) {
        std::cerr << "cfgreg: " << e.what() << '\n';
        return exit_invalid;
    }
    return usage_error("unknown command " + o.command);
}
