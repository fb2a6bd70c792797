#include "reactor/file_watch.h"

#include "reactor/system_error.h"

#include <limits.h>
#include <poll.h>
#include <sys/inotify.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace passgate::reactor {

namespace {

// Events on entries of the directory (filtered on the file's name), and on the directory itself.
// IN_Q_OVERFLOW, IN_IGNORED and IN_UNMOUNT are always reported.
constexpr std::uint32_t kEntryEvents =
    IN_CLOSE_WRITE   // written in place (or created and written), then closed
    | IN_MOVED_TO    // renamed into place: the atomic update
    | IN_CREATE      // created without a write (link(2), symlink, `: >` then nothing)
    | IN_DELETE      // removed
    | IN_MOVED_FROM  // renamed away
    | IN_ATTRIB;     // chmod/chown (may make it readable), touch
constexpr std::uint32_t kDirectoryEvents = IN_DELETE_SELF | IN_MOVE_SELF;

// A burst keeps postponing the call by `debounce`, but never past this many debounces after its
// first event: a file rewritten without pause is still reported.
constexpr Millis kDebounceCapFactor = 10;

std::string errno_text(int error) { return std::generic_category().message(error); }

}  // namespace

FileWatch::FileWatch(Loop& loop, std::string path, std::function<void()> changed, Millis debounce)
    : loop_(loop), path_(std::move(path)), changed_(std::move(changed)), debounce_(debounce) {
    const std::size_t slash = path_.rfind('/');
    // std::string_view pieces, then one construction each: GCC 12 at -O3 reports a false
    // -Wrestrict for assigning a literal-or-substring to a std::string (GCC bug 105329).
    const std::string_view whole(path_);
    const std::string_view directory =
        slash == std::string::npos ? std::string_view(".") : slash == 0 ? std::string_view("/") : whole.substr(0, slash);
    const std::string_view name = slash == std::string::npos ? whole : whole.substr(slash + 1);
    directory_ = std::string(directory);
    name_ = std::string(name);
    if (name_.empty() || name_ == "." || name_ == ".." || name_.size() > NAME_MAX) {
        throw std::invalid_argument("file watch: \"" + path_ + "\" does not end in a file name");
    }
    if (debounce_ < 0) throw std::invalid_argument("file watch: negative debounce");

    inotify_ = Fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_) throw_errno("inotify_init1");
    // IN_ONLYDIR: a directory that is a file (or a dangling symlink) is an error now, not later.
    const int wd = ::inotify_add_watch(inotify_.get(), directory_.c_str(),
                                       kEntryEvents | kDirectoryEvents | IN_ONLYDIR);
    if (wd < 0) throw_errno("inotify_add_watch on directory " + directory_ + " of " + path_);
    // The inotify fd holds only this one watch: `wd` needs no bookkeeping, and the watch goes
    // away with the fd.
    watch_.poll(inotify_.get(), POLLIN, /*multishot=*/true);
}

void FileWatch::on_readable(int result) {
    if (result < 0) {
        fail("poll on the inotify fd failed: " + errno_text(-result));
        return;
    }
    bool changed = false;
    std::string lost;  // why the directory can no longer be watched, if it cannot
    // Large enough for several events and always for one with the longest name. The drain is
    // bounded by the kernel's queue (fs.inotify.max_queued_events, then IN_Q_OVERFLOW).
    alignas(inotify_event) char buffer[4096 + sizeof(inotify_event) + NAME_MAX + 1];
    for (;;) {
        const ssize_t got = ::read(inotify_.get(), buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EAGAIN) break;  // drained (multishot poll is edge-like)
        if (got <= 0) {
            fail("read from the inotify fd failed: " + errno_text(got < 0 ? errno : EIO));
            return;
        }
        const auto size = static_cast<std::size_t>(got);
        std::size_t offset = 0;
        while (offset + sizeof(inotify_event) <= size) {
            inotify_event event;
            std::memcpy(&event, buffer + offset, sizeof event);
            const char* name_bytes = buffer + offset + sizeof event;
            offset += sizeof event + event.len;
            if (offset > size) break;  // the kernel never splits an event; do not over-read
            if ((event.mask & IN_Q_OVERFLOW) != 0) {
                ++overflows_;  // events were dropped: ours may be among them
                changed = true;
            } else if ((event.mask & IN_DELETE_SELF) != 0) {
                lost = "directory " + directory_ + " was deleted";
            } else if ((event.mask & IN_MOVE_SELF) != 0) {
                lost = "directory " + directory_ + " was renamed";
            } else if ((event.mask & IN_UNMOUNT) != 0) {
                lost = "the file system of directory " + directory_ + " was unmounted";
            } else if ((event.mask & IN_IGNORED) != 0) {
                // Follows each of the above; alone, the kernel dropped the watch for its own reasons.
                if (lost.empty()) lost = "the inotify watch on directory " + directory_ + " was removed";
            } else if (event.len > 0 &&
                       std::string_view(name_bytes, ::strnlen(name_bytes, event.len)) == name_) {
                changed = true;
            }
        }
    }
    if (!lost.empty()) {
        fail(lost + "; no longer watching " + path_);
        return;
    }
    if (changed) note_change();
}

void FileWatch::note_change() {
    const Millis now = loop_.now();
    if (!debounce_timer_.armed()) first_event_ = now;
    const Millis cap = first_event_ + kDebounceCapFactor * debounce_;
    loop_.arm_timer(debounce_timer_, std::min(now + debounce_, cap));
}

void FileWatch::on_debounce() {
    ++calls_;
    // A copy: `changed` may destroy this FileWatch, and changed_ with it, while running.
    const std::function<void()> changed = changed_;
    changed();  // nothing of `this` is used after this point
}

void FileWatch::fail(std::string why) {
    failure_ = std::move(why);
    watch_.stop();
    loop_.cancel_timer(debounce_timer_);
    // The file may well have gone with its directory: let the owner look once more.
    on_debounce();
}

}  // namespace passgate::reactor
