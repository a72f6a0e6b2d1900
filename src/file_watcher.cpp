// SPDX-License-Identifier: MIT
// The inotify engine behind file_watcher, with its polling fallback.

#include "file_watcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include "error_sink.hpp"

namespace cfgreg::detail {
namespace {

using clock = std::chrono::steady_clock;

constexpr int max_symlink_hops = 40;

constexpr std::uint32_t dir_event_mask = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE |
                                         IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                                         IN_MOVE_SELF | IN_ONLYDIR;

/// Owns one file descriptor.
class unique_fd {
  public:
    unique_fd() = default;
    explicit unique_fd(int fd) : fd_(fd) {}
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }

    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

std::string errno_text(int err) {
    return std::system_category().message(err);
}

/// The identity of delivered content: equal fingerprints mean nothing to deliver.
struct fingerprint {
    std::size_t hash = 0;
    std::size_t size = 0;

    friend bool operator==(const fingerprint&, const fingerprint&) = default;
};

fingerprint fingerprint_of(std::string_view bytes) {
    return {std::hash<std::string_view>{}(bytes), bytes.size()};
}

/// What stat(2) says about a path; polling touches a file when this differs.
struct stat_signature {
    int error = 0;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;

    friend bool operator==(const stat_signature&, const stat_signature&) = default;
};

std::int64_t to_ns(const timespec& t) {
    return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

stat_signature signature_of(const struct stat& st) {
    return {0, st.st_dev, st.st_ino, st.st_size, to_ns(st.st_mtim), to_ns(st.st_ctim)};
}

stat_signature stat_path(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {errno, 0, 0, 0, 0, 0};
    return signature_of(st);
}

/// True when the file's mtime is so recent that a later write within the same
/// timestamp tick could leave size and mtime unchanged; polling then re-reads
/// instead of trusting stat(2).
bool recently_modified(const stat_signature& sig) {
    timespec wall{};
    ::clock_gettime(CLOCK_REALTIME, &wall);
    return sig.error == 0 && to_ns(wall) - sig.mtime_ns < 2'000'000'000;
}

/// One read of a watched file, following symlinks.
struct snapshot {
    int error = 0;  ///< errno of the step that failed; 0 when `content` is the whole file
    std::string content;
    std::string resolved;
    fingerprint print;
    stat_signature signature;

    bool empty_or_missing() const { return error == ENOENT || (error == 0 && content.empty()); }

    bool same_as(const snapshot& other) const {
        return error == other.error && print == other.print && signature == other.signature;
    }
};

snapshot read_snapshot(const std::string& path) {
    snapshot s;
    // O_NONBLOCK keeps a FIFO planted at the path from blocking the thread in open(2).
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        s.error = errno;
        return s;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        s.error = errno;
        return s;
    }
    if (!S_ISREG(st.st_mode)) {
        s.error = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return s;
    }

    std::size_t used = 0;
    s.content.resize(static_cast<std::size_t>(st.st_size) + 1);
    for (;;) {
        if (used == s.content.size()) s.content.resize(s.content.size() * 2);
        const ssize_t n = ::read(fd.get(), s.content.data() + used, s.content.size() - used);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            s.error = errno;
            s.content.clear();
            return s;
        }
        if (n == 0) break;
        used += static_cast<std::size_t>(n);
    }
    s.content.resize(used);

    // Stat after reading, so a write that raced the read changes the signature.
    if (::fstat(fd.get(), &st) != 0) {
        s.error = errno;
        s.content.clear();
        return s;
    }
    s.signature = signature_of(st);
    s.print = fingerprint_of(s.content);
    if (char* real = ::realpath(path.c_str(), nullptr)) {
        s.resolved = real;
        std::free(real);
    } else {
        s.resolved = path;
    }
    return s;
}

/// Directory -> names looked up in it while resolving one watched path.
using interest_map = std::map<std::string, std::set<std::string, std::less<>>>;

/// Where a watched path currently ends: the directory and name of the final lookup.
struct resolution {
    interest_map interest;
    std::string final_dir;
    std::string final_name;
};

std::string join(const std::string& dir, const std::string& name) {
    return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string parent_of(const std::string& dir) {
    const auto slash = dir.rfind('/');
    return slash == 0 || slash == std::string::npos ? std::string("/") : dir.substr(0, slash);
}

/// Pushes the components of `path` so that the first one ends up on top of `stack`.
void push_components(std::vector<std::string>& stack, const std::string& path) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= path.size()) {
        const auto slash = path.find('/', start);
        const auto end = slash == std::string::npos ? path.size() : slash;
        if (end > start) parts.push_back(path.substr(start, end - start));
        start = end + 1;
    }
    stack.insert(stack.end(), parts.rbegin(), parts.rend());
}

/// Walks the absolute `path` like realpath(3) and records every lookup whose result
/// could change what the path reads: the name of each symlink in its directory, and
/// the final name in the final directory. A missing component is recorded in the
/// deepest existing directory, so its creation is seen.
resolution resolve(const std::string& path) {
    resolution r;
    std::vector<std::string> todo;
    push_components(todo, path);
    std::string dir = "/";
    int hops = 0;

    while (!todo.empty()) {
        std::string name = std::move(todo.back());
        todo.pop_back();
        if (name == ".") continue;
        if (name == "..") {
            dir = parent_of(dir);
            continue;
        }

        const std::string next = join(dir, name);
        struct stat st {};
        const bool exists = ::lstat(next.c_str(), &st) == 0;
        if (exists && S_ISDIR(st.st_mode) && !todo.empty()) {
            dir = next;  // a plain directory on the way: its removal shows as a self event
            continue;
        }

        r.interest[dir].insert(name);
        r.final_dir = dir;
        r.final_name = name;
        if (!exists || !S_ISLNK(st.st_mode)) break;

        std::string target(PATH_MAX, '\0');
        const ssize_t n = ::readlink(next.c_str(), target.data(), target.size());
        if (n <= 0 || ++hops > max_symlink_hops) break;
        target.resize(static_cast<std::size_t>(n));
        if (target.front() == '/') dir = "/";
        push_components(todo, target);
    }
    return r;
}

struct watched_file {
    std::string display;  ///< as passed to add()
    std::string path;     ///< absolute spelling; identity, and what is opened
    std::optional<fingerprint> known;
    resolution where;
    stat_signature polled;

    bool pending = false;
    bool has_candidate = false;
    snapshot candidate;
    clock::time_point candidate_since;
    bool writer_open = false;
    clock::time_point writer_since;
    int reported_error = 0;
};

struct request {
    bool add = true;
    std::string display;
    std::string path;
    std::optional<fingerprint> known;
};

std::string absolute_spelling(const std::filesystem::path& file) {
    if (file.empty()) throw std::invalid_argument("cfgreg: file_watcher: empty path");
    return std::filesystem::absolute(file).string();
}

}  // namespace

/// The shared and the thread-owned state of a watcher.
///
/// Invariants:
///  1. `mutex_` guards `requests_`, `registered_` and `stopping_`. `add`/`remove` update
///     `registered_` at once and queue a request; the thread applies requests in
///     order, so `files_` converges to `registered_`.
///  2. `wake_fd_` is written only while `mutex_` is held and `stopping_` is false;
///     `stop()` closes the descriptors only after the thread was joined, so no write
///     ever hits a closed or reused descriptor.
///  3. Everything below "thread-owned" is touched only by the watcher's thread
///     between its start and its join (thread start and `join()` order the accesses
///     of the constructor and of `stop()`); it needs no lock.
///  4. Handlers run on the thread with no lock held. The thread checks `stopping_`
///     before each call, but a call may still start just after `stop()` set it; no
///     handler runs after `stop()` returns because `stop()` joins the thread (called
///     from a handler, it returns at once and the thread ends after that handler).
///  5. `polling_mode_` and `windows_` are written by the thread only (and by the
///     constructor before the thread starts) and read by any thread.
struct file_watcher::impl {
    impl(change_handler change, error_handler error, file_watcher_options opts)
        : on_change_(std::move(change)), on_error_(std::move(error)), options_(opts) {}

    const change_handler on_change_;
    const error_handler on_error_;
    const file_watcher_options options_;

    std::mutex mutex_;
    std::vector<request> requests_;     // guarded by mutex_
    std::set<std::string> registered_;  // guarded by mutex_
    bool stopping_ = false;             // guarded by mutex_
    unique_fd wake_fd_;                 // see invariant 2

    std::mutex join_mutex_;  // serializes concurrent stop() calls around join()
    std::thread thread_;
    std::thread::id thread_id_;  // guarded by mutex_; set by the thread before any handler runs

    std::atomic<bool> polling_mode_{false};
    std::atomic<std::uint64_t> windows_{0};

    // Thread-owned.
    enum class phase { idle, debouncing, settling };
    unique_fd inotify_fd_;
    std::string degraded_reason_;  // set by the constructor when inotify is unusable
    int degraded_error_ = 0;
    std::map<std::string, watched_file> files_;
    std::map<std::string, std::pair<int, stat_signature>> dir_watches_;  // dir -> wd, identity
    std::map<int, std::string> watch_dirs_;                              // wd -> dir
    bool need_rewatch_ = false;
    phase state_ = phase::idle;
    clock::time_point window_start_, last_touch_, next_round_, next_poll_;
    std::vector<char> event_buffer_ = std::vector<char>(64 * 1024);

    void run();
    bool apply_requests();
    void wait_for_activity();
    void read_events(clock::time_point now);
    void dispatch(const inotify_event& ev, std::string_view name, clock::time_point now);
    void touch(watched_file& f, clock::time_point now);
    void rewatch(clock::time_point now);
    void enter_polling(const std::string& reason, int err, clock::time_point now);
    void poll_scan(clock::time_point now);
    void advance(clock::time_point now);
    void run_round(clock::time_point now);
    void finish_window();
    bool stop_requested();
    void report(const watch_error& e);
    void wake_locked();
    bool enqueue(request r);
};

void file_watcher::impl::wake_locked() {
    const std::uint64_t one = 1;
    // A full eventfd counter (EAGAIN) already means "wake up"; nothing else fails.
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

bool file_watcher::impl::stop_requested() {
    std::lock_guard lock(mutex_);
    return stopping_;
}

void file_watcher::impl::report(const watch_error& e) {
    if (stop_requested()) return;
    if (!on_error_) {
        write_default_error(e.message);
        return;
    }
    try {
        on_error_(e);
    } catch (...) {
        write_default_error(e.message, "error handler threw while reporting: ");
    }
}

void file_watcher::impl::run() {
    if (!degraded_reason_.empty()) enter_polling(degraded_reason_, degraded_error_, clock::now());
    while (apply_requests()) {
        if (need_rewatch_) rewatch(clock::now());
        wait_for_activity();

        const auto now = clock::now();
        read_events(now);
        // Relaxed: after the thread starts, only this thread writes polling_mode_.
        if (polling_mode_.load(std::memory_order_relaxed) && now >= next_poll_) {
            poll_scan(now);
            next_poll_ = now + options_.poll_interval;
        }
        advance(now);
    }
}

bool file_watcher::impl::apply_requests() {
    std::vector<request> batch;
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return false;
        batch.swap(requests_);
    }

    const auto now = clock::now();
    for (auto& r : batch) {
        if (!r.add) {
            files_.erase(r.path);
            need_rewatch_ = true;
            continue;
        }
        watched_file f;
        f.display = std::move(r.display);
        f.path = r.path;
        f.known = r.known;
        f.polled = stat_path(f.path);
        // The baseline was taken before the watch existed: re-read once to catch a
        // change that landed in between.
        auto [it, inserted] = files_.insert_or_assign(std::move(r.path), std::move(f));
        touch(it->second, now);
    }
    return true;
}

void file_watcher::impl::wait_for_activity() {
    auto deadline = clock::time_point::max();
    if (state_ == phase::debouncing) {
        deadline = std::min(last_touch_ + options_.debounce, window_start_ + options_.max_wait);
    } else if (state_ == phase::settling) {
        deadline = next_round_;
    }
    // Relaxed: as in run(); this thread is the only writer.
    if (polling_mode_.load(std::memory_order_relaxed)) deadline = std::min(deadline, next_poll_);

    timespec timeout{};
    timespec* timeout_ptr = nullptr;
    if (deadline != clock::time_point::max()) {
        const auto left = std::max(deadline - clock::now(), clock::duration::zero());
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        timeout.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        timeout.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        timeout_ptr = &timeout;
    }

    pollfd fds[2] = {{wake_fd_.get(), POLLIN, 0}, {inotify_fd_.get(), POLLIN, 0}};
    const nfds_t count = inotify_fd_ ? 2 : 1;
    if (::ppoll(fds, count, timeout_ptr, nullptr) > 0 && (fds[0].revents & POLLIN)) {
        std::uint64_t value = 0;
        [[maybe_unused]] const ssize_t n = ::read(wake_fd_.get(), &value, sizeof value);
    }
}

void file_watcher::impl::read_events(clock::time_point now) {
    while (inotify_fd_) {
        const ssize_t n = ::read(inotify_fd_.get(), event_buffer_.data(), event_buffer_.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // EAGAIN: drained

        for (std::size_t at = 0; at < static_cast<std::size_t>(n);) {
            // The name follows the fixed part, NUL-padded to `len` bytes (0 when absent).
            inotify_event ev{};
            std::memcpy(&ev, event_buffer_.data() + at, sizeof ev);
            const char* name = event_buffer_.data() + at + sizeof ev;
            dispatch(ev, std::string_view(name, ::strnlen(name, ev.len)), now);
            at += sizeof ev + ev.len;
        }
    }
}

void file_watcher::impl::dispatch(const inotify_event& ev, std::string_view name,
                                  clock::time_point now) {
    if (ev.mask & IN_Q_OVERFLOW) {
        for (auto& [path, f] : files_) {
            f.writer_open = false;
            touch(f, now);
        }
        return;
    }
    const auto w = watch_dirs_.find(ev.wd);
    if (w == watch_dirs_.end()) return;
    const std::string dir = w->second;
    if (ev.mask & IN_IGNORED) {
        const auto d = dir_watches_.find(dir);
        if (d != dir_watches_.end() && d->second.first == ev.wd) dir_watches_.erase(d);
        watch_dirs_.erase(w);
    }

    // A nameless event is about the directory itself (deleted, moved, unwatched).
    for (auto& [path, f] : files_) {
        const auto d = f.where.interest.find(dir);
        if (d == f.where.interest.end()) continue;
        if (!name.empty() && d->second.find(name) == d->second.end()) continue;

        if (dir == f.where.final_dir && name == f.where.final_name) {
            if (ev.mask & IN_MODIFY) {
                f.writer_open = true;
                f.writer_since = now;
            }
            if (ev.mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)) {
                f.writer_open = false;
            }
        }
        touch(f, now);
    }
}

void file_watcher::impl::touch(watched_file& f, clock::time_point now) {
    need_rewatch_ = true;
    f.pending = true;
    f.has_candidate = false;
    if (state_ == phase::idle) {
        state_ = phase::debouncing;
        window_start_ = now;
    }
    last_touch_ = now;
    if (state_ == phase::settling) next_round_ = std::min(next_round_, now + options_.debounce);
}

void file_watcher::impl::rewatch(clock::time_point now) {
    need_rewatch_ = false;
    if (!inotify_fd_) return;
    std::set<std::string> wanted;
    for (auto& [path, f] : files_) {
        f.where = resolve(f.path);
        for (const auto& [dir, names] : f.where.interest) {
            wanted.insert(dir);
        }
    }

    // Drop watches no path leads through any more (an old `..data` target).
    for (auto it = dir_watches_.begin(); it != dir_watches_.end();) {
        if (wanted.count(it->first) != 0) {
            ++it;
            continue;
        }
        ::inotify_rm_watch(inotify_fd_.get(), it->second.first);
        watch_dirs_.erase(it->second.first);
        it = dir_watches_.erase(it);
    }

    // Arm new directories, and directories replaced by another inode.
    for (const auto& dir : wanted) {
        const stat_signature id = stat_path(dir);
        if (id.error != 0) continue;  // gone again; the event that removed it brings us back
        const auto it = dir_watches_.find(dir);
        const bool same = it != dir_watches_.end() && it->second.second.dev == id.dev &&
                          it->second.second.ino == id.ino;
        if (same) continue;

        const int wd = ::inotify_add_watch(inotify_fd_.get(), dir.c_str(), dir_event_mask);
        if (wd < 0) {
            const int err = errno;
            if (err == ENOENT || err == ENOTDIR) continue;
            enter_polling("inotify_add_watch(" + dir + ") failed: " + errno_text(err), err, now);
            return;
        }
        if (it != dir_watches_.end() && it->second.first != wd) {
            ::inotify_rm_watch(inotify_fd_.get(), it->second.first);
            watch_dirs_.erase(it->second.first);
        }
        dir_watches_[dir] = {wd, id};
        watch_dirs_[wd] = dir;

        // Whatever happened in this directory before the watch existed went unseen.
        for (auto& [path, f] : files_) {
            if (f.where.interest.count(dir) != 0) touch(f, now);
        }
    }
}

void file_watcher::impl::enter_polling(const std::string& reason, int err, clock::time_point now) {
    inotify_fd_.reset();
    dir_watches_.clear();
    watch_dirs_.clear();
    // Release pairs with the acquire load in file_watcher::polling().
    polling_mode_.store(true, std::memory_order_release);
    next_poll_ = now + options_.poll_interval;
    for (auto& [path, f] : files_) {
        f.polled = stat_path(f.path);
        f.writer_open = false;
        touch(f, now);
    }

    watch_error e;
    e.kind = watch_error_kind::degraded;
    if (err != 0) e.code = std::error_code(err, std::system_category());
    e.message = "degraded: polling every " + std::to_string(options_.poll_interval.count()) +
                " ms because " + reason;
    report(e);
}

void file_watcher::impl::poll_scan(clock::time_point now) {
    for (auto& [path, f] : files_) {
        const stat_signature now_sig = stat_path(f.path);
        if (now_sig == f.polled) {
            // Re-read without extending a running window: stat cannot be trusted.
            if (recently_modified(now_sig) && !f.pending) {
                f.pending = true;
                if (state_ == phase::idle) {
                    state_ = phase::debouncing;
                    window_start_ = last_touch_ = now;
                }
            }
            continue;
        }
        f.polled = now_sig;
        touch(f, now);
    }
}

void file_watcher::impl::advance(clock::time_point now) {
    if (state_ == phase::idle) return;
    if (state_ == phase::debouncing) {
        if (now < std::min(last_touch_ + options_.debounce, window_start_ + options_.max_wait))
            return;
        state_ = phase::settling;
        next_round_ = now;
    }
    if (now >= next_round_) run_round(now);
}

void file_watcher::impl::run_round(clock::time_point now) {
    bool ready = true;
    auto next = clock::time_point::max();
    for (auto& [path, f] : files_) {
        if (!f.pending) continue;
        snapshot s = read_snapshot(f.path);
        if (!f.has_candidate || !f.candidate.same_as(s)) {
            f.candidate = std::move(s);
            f.has_candidate = true;
            f.candidate_since = now;
        }

        // Ready once two reads `settle` apart agree; longer for an empty or missing
        // file, and while a writer that modified the file has not closed it yet.
        const bool empty = f.candidate.empty_or_missing();
        auto ready_at = f.candidate_since + (empty ? options_.empty_grace : options_.settle);
        if (f.writer_open) ready_at = std::max(ready_at, f.writer_since + options_.writer_grace);
        if (ready_at > now) {
            ready = false;
            next = std::min(next, ready_at);
        }
    }
    if (ready) {
        finish_window();
    } else {
        next_round_ = next;
    }
}

void file_watcher::impl::finish_window() {
    std::vector<file_change> changes;
    std::vector<watch_error> errors;

    // Under the lock only to leave out files removed meanwhile (request queued).
    {
        std::lock_guard lock(mutex_);
        for (auto& [path, f] : files_) {
            if (!f.pending) continue;
            f.pending = false;
            f.has_candidate = false;
            snapshot s = std::exchange(f.candidate, snapshot{});
            if (s.error != 0) {
                if (s.error != f.reported_error) {
                    f.reported_error = s.error;
                    errors.push_back({watch_error_kind::io, f.display,
                                      std::error_code(s.error, std::system_category()),
                                      "cannot read " + f.display + ": " + errno_text(s.error)});
                }
                continue;
            }
            f.reported_error = 0;
            if (f.known == s.print) continue;
            f.known = s.print;
            if (registered_.count(path) == 0) continue;
            changes.push_back({f.display, std::move(s.resolved), std::move(s.content)});
        }
    }
    state_ = phase::idle;

    // Handlers run with no lock held.
    for (const auto& e : errors) {
        report(e);
    }
    if (!changes.empty() && on_change_ && !stop_requested()) {
        std::sort(changes.begin(), changes.end(),
                  [](const file_change& a, const file_change& b) { return a.path < b.path; });
        try {
            on_change_(std::move(changes));
        } catch (const std::exception& ex) {
            report({watch_error_kind::callback,
                    {},
                    {},
                    std::string("change handler threw: ") + ex.what()});
        } catch (...) {
            report({watch_error_kind::callback, {}, {}, "change handler threw"});
        }
    }
    // Release pairs with the acquire load in windows_closed(): the handlers above
    // happened before a caller sees the new count.
    windows_.fetch_add(1, std::memory_order_release);
}

bool file_watcher::impl::enqueue(request r) {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    const bool fresh = r.add ? registered_.insert(r.path).second : registered_.erase(r.path) != 0;
    if (!fresh) return false;
    requests_.push_back(std::move(r));
    wake_locked();
    return true;
}

file_watcher::file_watcher(change_handler on_change, error_handler on_error,
                           file_watcher_options options) {
    const auto zero = std::chrono::milliseconds::zero();
    if (options.debounce < zero || options.max_wait < zero || options.settle < zero ||
        options.empty_grace < zero || options.writer_grace < zero ||
        options.poll_interval <= zero) {
        throw std::invalid_argument(
            "cfgreg: file_watcher: negative duration or zero poll interval");
    }
    impl_ = std::make_unique<impl>(std::move(on_change), std::move(on_error), options);

    impl_->wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!impl_->wake_fd_) {
        throw std::system_error(errno, std::system_category(), "cfgreg: file_watcher: eventfd");
    }
    if (options.force_polling) {
        impl_->degraded_reason_ = "file_watcher_options::force_polling is set";
    } else {
        impl_->inotify_fd_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
        if (!impl_->inotify_fd_) {
            impl_->degraded_error_ = errno;
            impl_->degraded_reason_ = "inotify_init1 failed: " + errno_text(errno);
        }
    }
    // Release pairs with the acquire load in polling(); the thread is not running yet.
    if (!impl_->degraded_reason_.empty())
        impl_->polling_mode_.store(true, std::memory_order_release);

    // The thread records its own id before it can call a handler, so that stop() called from
    // a handler always recognizes it (the constructor may not have returned yet).
    impl_->thread_ = std::thread([state = impl_.get()] {
        {
            std::lock_guard lock(state->mutex_);
            state->thread_id_ = std::this_thread::get_id();
        }
        state->run();
    });
}

file_watcher::~file_watcher() {
    if (impl_) stop();
}

bool file_watcher::add(const std::filesystem::path& file) {
    std::string path = absolute_spelling(file);
    const snapshot s = read_snapshot(path);
    std::optional<fingerprint> known;
    if (s.error == 0) known = s.print;
    return impl_->enqueue({true, file.string(), std::move(path), known});
}

bool file_watcher::add(const std::filesystem::path& file, std::string_view known_content) {
    return impl_->enqueue(
        {true, file.string(), absolute_spelling(file), fingerprint_of(known_content)});
}

std::size_t file_watcher::add(const std::vector<std::filesystem::path>& files) {
    std::size_t added = 0;
    for (const auto& file : files)
        added += add(file) ? 1 : 0;
    return added;
}

bool file_watcher::remove(const std::filesystem::path& file) {
    return impl_->enqueue({false, {}, absolute_spelling(file), std::nullopt});
}

void file_watcher::stop() {
    bool from_handler = false;
    {
        std::lock_guard lock(impl_->mutex_);
        if (!impl_->stopping_) {
            impl_->stopping_ = true;
            impl_->wake_locked();
        }
        from_handler = std::this_thread::get_id() == impl_->thread_id_;
    }
    if (from_handler) return;  // the thread ends by itself once the handler returns

    std::lock_guard join_lock(impl_->join_mutex_);
    if (!impl_->thread_.joinable()) return;
    impl_->thread_.join();
    std::lock_guard lock(impl_->mutex_);
    impl_->inotify_fd_.reset();
    impl_->wake_fd_.reset();
}

bool file_watcher::polling() const noexcept {
    // Acquire pairs with the release stores in the constructor and enter_polling().
    return impl_->polling_mode_.load(std::memory_order_acquire);
}

std::uint64_t file_watcher::windows_closed() const noexcept {
    // Acquire pairs with the release increment at the end of finish_window().
    return impl_->windows_.load(std::memory_order_acquire);
}

}  // namespace cfgreg::detail
