// SPDX-License-Identifier: MIT
// Test helpers for real files: a scratch folder, writes that raise events, bounded waits.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <thread>

namespace cfgreg_test {

/// A fresh directory under the system temporary directory, removed with its content.
/// Its name starts with `prefix`, then the process id, a counter and a random salt.
class temp_dir {
  public:
    explicit temp_dir(std::string_view prefix) {
        static std::atomic<unsigned> counter{0};
        const auto salt = std::random_device{}();
        // Relaxed: the counter only keeps names apart; no other memory hangs on it.
        const unsigned n = counter.fetch_add(1, std::memory_order_relaxed);
        path_ = std::filesystem::temp_directory_path() /
                (std::string(prefix) + std::to_string(::getpid()) + "_" + std::to_string(n) + "_" +
                 std::to_string(salt));
        std::filesystem::create_directories(path_);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

/// Each chunk is its own write(2), so one save raises several events.
inline void write_chunks(const std::filesystem::path& file,
                         std::initializer_list<std::string_view> chunks) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    for (const auto chunk : chunks) {
        REQUIRE(::write(fd, chunk.data(), chunk.size()) == static_cast<ssize_t>(chunk.size()));
    }
    REQUIRE(::close(fd) == 0);
}

inline void write_file(const std::filesystem::path& file, std::string_view content) {
    write_chunks(file, {content});
}

/// What most editors do: write a temporary file beside the target, then rename it over.
inline void save_by_rename(const std::filesystem::path& file, std::string_view content) {
    std::filesystem::path temporary = file;
    temporary += ".swp";
    write_file(temporary, content);
    std::filesystem::rename(temporary, file);
}

/// What Kubernetes does to a ConfigMap volume in `dir`: writes `content` as config.toml
/// into a new directory `version`, then swaps the `..data` symlink over to it in one rename.
inline void publish_config_map(const temp_dir& dir, const std::string& version,
                               std::string_view content) {
    std::filesystem::create_directory(dir / version);
    write_file(dir / version / "config.toml", content);
    std::filesystem::create_directory_symlink(version, dir / "..data_tmp");
    std::filesystem::rename(dir / "..data_tmp", dir / "..data");
}

/// Waits up to `patience` for a condition that no handler announces, checking it
/// every millisecond; returns whether it came true.
template <class Predicate>
bool eventually_within(std::chrono::steady_clock::duration patience, Predicate predicate) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (!predicate()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

}  // namespace cfgreg_test
