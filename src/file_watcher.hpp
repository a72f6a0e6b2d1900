// SPDX-License-Identifier: MIT
// Private: the engine that watches files and delivers their settled content in batches.
#pragma once

// Thread safety: `add`, `remove`, `stop`, `polling` and `windows_closed` may be
// called concurrently from any thread, including from inside a handler. Both
// handlers run on the watcher's thread, one call at a time, with no lock of the
// watcher held. `stop()` (and the destructor) returns only after the thread has
// ended; no handler runs after that. The destructor must not run on the watcher's
// own thread (inside a handler): call `stop()` there and destroy the watcher
// elsewhere.
//
// A `file_watcher` owns one thread. On Linux it puts inotify watches on the
// *directories* that decide what a watched path resolves to (the file's own
// directory and the directory of every symlink on the way, so Kubernetes `..data`
// swaps are followed), never on the file alone; when inotify cannot be used it
// polls instead and says so once on the error handler. Events only tell the engine
// *which* files to look at: whether a file changed is decided by reading it and
// comparing the bytes with the last delivered content, so an identical rewrite, or
// a symlink re-pointed at identical bytes, delivers nothing.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cfgreg::detail {

/// One watched file whose content changed, as delivered in a batch.
struct file_change {
    std::string path;      ///< the path as passed to `add`
    std::string resolved;  ///< what the symlink chain pointed at when the content was read
    std::string content;   ///< the whole file; never a truncated or half-written state
};

/// What a `watch_error` reports.
enum class watch_error_kind {
    io,        ///< a watched file could not be read; its last good content stays current
    degraded,  ///< inotify is unusable; the watcher polls from now on
    callback,  ///< the change handler threw; the batch counts as delivered
};

/// A problem met on the watcher's thread; it never stops the watcher.
struct watch_error {
    watch_error_kind kind = watch_error_kind::io;
    std::string path;      ///< the watched path as passed to `add`; empty unless `kind == io`
    std::error_code code;  ///< the errno behind it, when there is one
    std::string message;   ///< one line, ready for a log
};

/// Timing and mode of a `file_watcher`. Durations must not be negative.
struct file_watcher_options {
    /// Trailing edge: the first read waits until no event arrived for this long...
    std::chrono::milliseconds debounce{50};
    /// ...but no longer than this after the first event of the window.
    std::chrono::milliseconds max_wait{500};
    /// A non-empty file is ready when two reads this far apart agree (bytes, size,
    /// mtime, inode).
    std::chrono::milliseconds settle{20};
    /// An empty or missing file is ready only after staying so for this long. An
    /// intentionally emptied file is then delivered with empty content; a missing
    /// one is reported as an `io` error and its last content stays current.
    std::chrono::milliseconds empty_grace{1000};
    /// A file written through a descriptor that is still open (a write event seen,
    /// no close-after-write yet) waits up to this long for the writer to close it.
    std::chrono::milliseconds writer_grace{2000};
    /// Interval of the polling fallback.
    std::chrono::milliseconds poll_interval{1000};
    /// Poll instead of using inotify (network file systems, and tests of the fallback).
    bool force_polling = false;
};

/// Watches files and calls a handler with every file whose content changed, in batches.
///
/// Every watched file touched within one debounce window is read until its content
/// is stable and delivered at most once, all of them in one call of the change
/// handler, sorted by path. A file that reads the same bytes as the last delivered
/// (or initial) content is left out; a window in which nothing changed calls
/// nothing. A file that cannot be read is reported on the error handler once per
/// distinct error and its last content stays current: removal is not a change. When
/// it can be read again, differing content is delivered as usual.
///
///     file_watcher w([](std::vector<file_change> batch) { reload(batch); },
///                    [](const watch_error& e) { log(e.message); });
///     w.add("/etc/app/config.toml");
class file_watcher {
  public:
    using change_handler = std::function<void(std::vector<file_change>)>;
    using error_handler = std::function<void(const watch_error&)>;

    /// Starts the thread. An empty `on_error` writes each error as one line
    /// to stderr. Throws `std::system_error` when no wake-up descriptor or
    /// thread can be created and `std::invalid_argument` on a negative
    /// duration or a zero `poll_interval`.
    explicit file_watcher(change_handler on_change, error_handler on_error = {},
                          file_watcher_options options = {});

    /// Stops and joins the thread (see `stop`). Must not run on the watcher's own
    /// thread.
    ~file_watcher();

    file_watcher(const file_watcher&) = delete;
    file_watcher& operator=(const file_watcher&) = delete;

    /// Watches `file` (made absolute against the current directory, symlinks
    /// kept), which need not exist yet. Its current content, read here, is the
    /// baseline: only later changes are delivered, including one that lands
    /// before the watch is armed. Returns false when the path is already
    /// watched or the watcher is stopped. Throws `std::invalid_argument` on an
    /// empty path and `std::filesystem::filesystem_error` when the current
    /// directory cannot be read.
    bool add(const std::filesystem::path& file);

    /// Like `add(file)`, with `known_content` as the baseline instead of a
    /// read: if the file already differs from it, the current content is
    /// delivered in the first batch.
    bool add(const std::filesystem::path& file, std::string_view known_content);

    /// Adds several files; returns how many were not watched before.
    std::size_t add(const std::vector<std::filesystem::path>& files);

    /// Stops watching `file`. A batch delivered after this returns does not
    /// contain it (a handler call already running may). Returns false when
    /// the path was not watched.
    bool remove(const std::filesystem::path& file);

    /// Stops the thread and waits for it, releasing every descriptor;
    /// idempotent. Called from inside a handler, it returns at once and the
    /// thread ends after that handler returns.
    void stop();

    /// True once the watcher has fallen back to polling (or was told to poll).
    bool polling() const noexcept;

    /// Number of debounce windows fully processed, whether or not they delivered
    /// anything; handlers of a window have returned before it is counted. For
    /// diagnostics and tests.
    std::uint64_t windows_closed() const noexcept;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace cfgreg::detail
