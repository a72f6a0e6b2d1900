// SPDX-License-Identifier: MIT
// The README's first example: load a file, read values, subscribe, and turn on hot reload.
#include <cfgreg/registry.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : "examples/config/app.toml";
    cfgreg::registry& reg = cfgreg::registry::global();

    // Load: all or nothing; a bad file throws cfgreg::error with file:line:column.
    reg.load_file(path).value();

    // Read: lock-free; typed, with a fallback, or through a handle for hot paths.
    const int port = reg.get_or<int>("server.port", 80);
    const auto timeout = reg.require<std::chrono::milliseconds>("server.timeout");
    cfgreg::setting<std::string> level = reg.setting<std::string>("log.level", "warn");
    std::printf("port %d, timeout %lld ms, log level %s\n", port,
                static_cast<long long>(timeout.count()), level.get().c_str());

    // Subscribe: callbacks run after the new value is visible to every reader.
    cfgreg::subscription sub = reg.subscribe("log.level", [](const cfgreg::change_event& e) {
        std::printf("log.level: %s -> %s (from %s)\n", e.old_value->to_toml().c_str(),
                    e.new_value->to_toml().c_str(), e.source.c_str());
    });

    // Hot reload: edits of the file apply while the program runs, until `watch` ends.
    cfgreg::watch_handle watch = reg.watch(path);

    reg.set("log.level", "debug").value();  // a runtime override notifies too
    std::printf("log level now %s\n", level.get().c_str());
}
