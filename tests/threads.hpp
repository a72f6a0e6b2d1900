// SPDX-License-Identifier: MIT
// Test helpers: functions run together on threads of their own.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <latch>
#include <thread>
#include <vector>

namespace cfgreg_test {

/// Runs each function on its own thread, all released together, and joins them.
inline void run_together(std::vector<std::function<void()>> fns) {
    std::latch start(static_cast<std::ptrdiff_t>(fns.size()));
    std::vector<std::thread> threads;
    for (auto& f : fns) {
        threads.emplace_back([&start, &f] {
            start.arrive_and_wait();
            f();
        });
    }
    for (auto& t : threads)
        t.join();
}

/// Runs `read` over and over on `readers` threads while `write` runs on this one, then
/// stops and joins the readers once `write` returns.
template <class Read, class Write>
void read_during(int readers, Read read, Write write) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < readers; ++t) {
        threads.emplace_back([&] {
            // Relaxed: the flag only ends the loop; join() orders the rest.
            while (!stop.load(std::memory_order_relaxed))
                read();
        });
    }
    write();
    stop = true;
    for (auto& t : threads)
        t.join();
}

}  // namespace cfgreg_test
