// SPDX-License-Identifier: MIT
// Compile-once template cache shared by many threads, built on cfgreg::sync_map.
//
// Each template is compiled on its first request. The naive cache stores a placeholder with
// load_or_store and overwrites it once compiled: meanwhile other threads are handed the
// placeholder. The correct cache stores a slot that owns a std::once_flag: every thread gets
// the same slot from load_or_store, and call_once lets exactly one of them compile while the
// others wait for the result.
#include <cfgreg/sync_map.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

const std::vector<std::string> template_names = {"home", "login",    "profile", "search",
                                                 "cart", "checkout", "help",    "error"};

std::atomic<int> compilations{0};

std::string compile(const std::string& name) {
    compilations.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // an expensive compile
    return "<compiled " + name + ">";
}

// Runs `threads` workers that each request every template `rounds` times.
template <class Request>
void serve(int threads, int rounds, Request request) {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            for (int r = 0; r < rounds; ++r) {
                for (std::size_t i = 0; i < template_names.size(); ++i) {
                    request(
                        template_names[(i + static_cast<std::size_t>(t)) % template_names.size()]);
                }
            }
        });
    }
    for (auto& w : workers)
        w.join();
}

// Wrong: the placeholder is visible to every other thread until the compile finishes.
void naive_cache(int threads, int rounds) {
    cfgreg::sync_map<std::string, std::string> cache;
    std::atomic<int> placeholders_served{0};
    compilations = 0;
    serve(threads, rounds, [&](const std::string& name) {
        auto [text, loaded] = cache.load_or_store(name, "<compiling>");
        if (!loaded) {
            cache.store(name, compile(name));
        } else if (text == "<compiling>") {
            placeholders_served.fetch_add(1, std::memory_order_relaxed);
        }
    });
    std::printf("naive:   %zu templates, %d compilations, %d requests got a placeholder\n",
                template_names.size(), compilations.load(), placeholders_served.load());
}

struct slot {
    std::once_flag once;
    std::string text;
};

// Right: one slot per name, published once; call_once compiles inside it exactly once.
void once_cache(int threads, int rounds) {
    cfgreg::sync_map<std::string, std::shared_ptr<slot>> cache;
    std::atomic<int> placeholders_served{0};
    compilations = 0;
    serve(threads, rounds, [&](const std::string& name) {
        // A hit is a lock-free load; only a miss allocates a candidate slot.
        std::shared_ptr<slot> s = cache.load(name).value_or(nullptr);
        if (s == nullptr) s = cache.load_or_store(name, std::make_shared<slot>()).first;
        std::call_once(s->once, [&] { s->text = compile(name); });
        if (s->text.rfind("<compiled ", 0) != 0) {
            placeholders_served.fetch_add(1, std::memory_order_relaxed);
        }
    });
    std::printf("correct: %zu templates, %d compilations, %d requests got a placeholder\n",
                template_names.size(), compilations.load(), placeholders_served.load());
}

}  // namespace

int main() {
    const int threads = 8;
    const int rounds = 50;
    naive_cache(threads, rounds);
    once_cache(threads, rounds);
    const bool exactly_once = compilations.load() == static_cast<int>(template_names.size());
    std::printf("each template compiled exactly once: %s\n", exactly_once ? "yes" : "no");
    return exactly_once ? 0 : 1;
}
