// SPDX-License-Identifier: MIT
// Test helper: start several functions on their own threads at the same moment.
#pragma once

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

}  // namespace cfgreg_test
