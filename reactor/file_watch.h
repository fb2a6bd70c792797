#pragma once
// Calls back when a file may have changed: created, rewritten in place, replaced by a rename,
// deleted, renamed away, or its attributes changed (chmod, touch). The callback says only "look
// again": the owner re-reads the file and decides (a missing or malformed file is its business).
//
// How: inotify on the file's *directory*, filtered on the file's name. Watching the file itself
// would miss the usual atomic update (`write tmp; rename tmp path`): the watch follows the old
// inode, which the rename unlinks. The inotify fd's readiness comes through the loop (a multishot
// poll Watch); each wake-up drains every queued event.
//
// Debounce: events start a quiet period of `debounce` (default 50 ms) that each later event
// restarts, capped at 10 times `debounce` after the first event; then `changed` is called once.
// So a burst (an editor's write + chmod + rename, a script rewriting the file line by line) is one
// call, and a non-atomic writer that pauses less than `debounce` between writes is less likely to
// be read half-way. Atomic renames remain the way to never be read half-way: a writer that pauses
// longer, or writes for longer than the cap, may be read mid-write (its last write or close is
// then one more call). IN_MODIFY is deliberately not watched: IN_CLOSE_WRITE marks the end of a
// write session, so a writer that keeps the file open without closing it is not seen until it
// closes (or the file is renamed into place).
//
// A full inotify queue (IN_Q_OVERFLOW: events were lost) counts as a change.
//
// The directory must exist when the watch is made (else the constructor throws std::system_error
// naming it: the caller reports a config error). If the directory is later removed, renamed or
// unmounted, the watch cannot follow it: `changed` is called one last time, the watch stops, and
// failure() says why; make a new FileWatch once the directory is back.
//
// Not followed: symlinks whose target changes without the name itself changing (e.g. Kubernetes
// ConfigMap volumes swap a `..data` directory symlink). Point `path` at a file that is replaced
// in its own directory.

#include "reactor/fd.h"
#include "reactor/loop.h"
#include "reactor/timer.h"

#include <cstdint>
#include <functional>
#include <string>

namespace passgate::reactor {

class FileWatch {
public:
    static constexpr Millis kDefaultDebounce = 50;

    // Throws std::system_error when inotify cannot be set up or the directory of `path` does not
    // exist or is not a directory; std::invalid_argument when `path` has no file name ("", "dir/").
    // `changed` may destroy this FileWatch.
    FileWatch(Loop& loop, std::string path, std::function<void()> changed,
              Millis debounce = kDefaultDebounce);
    FileWatch(const FileWatch&) = delete;
    FileWatch& operator=(const FileWatch&) = delete;
    ~FileWatch() = default;

    const std::string& path() const { return path_; }
    // False once the directory is gone (or inotify failed); failure() then says why.
    bool watching() const { return failure_.empty(); }
    const std::string& failure() const { return failure_; }

    // Counters, for tests and metrics.
    std::uint64_t calls() const { return calls_; }          // times `changed` was called
    std::uint64_t overflows() const { return overflows_; }  // IN_Q_OVERFLOW events seen

private:
    void on_readable(int result);
    void on_debounce();
    void note_change();
    void fail(std::string why);

    Loop& loop_;
    std::string path_;
    std::string directory_;
    std::string name_;  // the file's name within directory_
    std::function<void()> changed_;
    Millis debounce_;
    Millis first_event_ = 0;  // start of the current quiet period's burst
    std::string failure_;
    std::uint64_t calls_ = 0;
    std::uint64_t overflows_ = 0;
    // Declared after what they use, so they are destroyed first: the watch and timer detach
    // before the inotify fd closes.
    Fd inotify_;
    MemberWatchHandler<FileWatch, &FileWatch::on_readable> readable_{*this};
    Watch watch_{loop_, readable_};
    MemberTimer<FileWatch, &FileWatch::on_debounce> debounce_timer_{*this};
};

}  // namespace passgate::reactor
