#include "reactor/file_watch.h"

#include "reactor/fd.h"
#include "reactor/loop.h"

#include "tests/reactor/helpers.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

using namespace passgate::reactor;

namespace {

// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
    std::string path;
    TempDir() {
        char name[] = "/tmp/passgate-file-watch-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        path = name;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ignored;  // best effort: a leftover in /tmp is not a test failure
        std::filesystem::remove_all(path, ignored);
    }
    std::string operator/(std::string_view name) const { return path + "/" + std::string(name); }
};

// open(O_TRUNC) + write + close: IN_CREATE (when new) and IN_CLOSE_WRITE.
void write_in_place(const std::string& path, std::string_view text) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(fd);
    REQUIRE(::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

// The atomic update: a temporary file in the same directory renamed over the target.
void write_atomically(const std::string& path, std::string_view text) {
    const std::string temporary = path + ".tmp";
    write_in_place(temporary, text);
    REQUIRE(::rename(temporary.c_str(), path.c_str()) == 0);
}

using reactor_test::StopAfter;

// Runs the loop for `duration` ms, or less when something calls loop.stop().
void run_for(Loop& loop, Millis duration) {
    StopAfter stop(loop);
    loop.update_now();  // the test may have spent a while outside the loop
    loop.arm_timer_after(stop, duration);
    loop.run();
}

// A FileWatch whose callback counts, and stops the loop so that a test can wait for a call.
struct CountingWatch {
    Loop& loop;
    int calls = 0;
    Millis last_call = 0;
    FileWatch watch;
    CountingWatch(Loop& l, const std::string& path, Millis debounce = FileWatch::kDefaultDebounce)
        : loop(l), watch(l, path, [this] { on_changed(); }, debounce) {}
    void on_changed() {
        ++calls;
        last_call = monotonic_millis();
        loop.stop();
    }
};

// Generous bound for a call that should come after one debounce: the machine is shared.
constexpr Millis kWait = 3000;
// How long to keep looking for a call that must not come.
constexpr Millis kQuiet = 300;

}  // namespace

TEST_CASE("file watch: an atomic rename onto the file is one change, after the debounce",
          "[file_watch]") {
    TempDir dir;
    write_in_place(dir / "endpoints", "old\n");
    Loop loop;
    CountingWatch counting(loop, dir / "endpoints");
    const Millis before = monotonic_millis();
    write_atomically(dir / "endpoints", "new\n");
    run_for(loop, kWait);
    CHECK(counting.calls == 1);
    CHECK(counting.last_call - before >= FileWatch::kDefaultDebounce);
    run_for(loop, kQuiet);  // the temporary file's own events were not counted
    CHECK(counting.calls == 1);
    CHECK(counting.watch.calls() == 1);
    CHECK(counting.watch.watching());
}

TEST_CASE("file watch: in-place writes are seen, including creating the file", "[file_watch]") {
    TempDir dir;
    Loop loop;
    CountingWatch counting(loop, dir / "endpoints");  // the file need not exist yet
    write_in_place(dir / "endpoints", "first\n");
    run_for(loop, kWait);
    CHECK(counting.calls == 1);
    write_in_place(dir / "endpoints", "second\n");
    run_for(loop, kWait);
    CHECK(counting.calls == 2);
    // Appending through a descriptor held open is seen when it is closed.
    {
        Fd fd(::open((dir / "endpoints").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
        REQUIRE(fd);
        REQUIRE(::write(fd.get(), "third\n", 6) == 6);
        run_for(loop, kQuiet);
        CHECK(counting.calls == 2);
    }
    run_for(loop, kWait);
    CHECK(counting.calls == 3);
}

TEST_CASE("file watch: other files in the same directory are ignored", "[file_watch]") {
    TempDir dir;
    write_in_place(dir / "endpoints", "x\n");
    Loop loop;
    CountingWatch counting(loop, dir / "endpoints");
    write_in_place(dir / "other", "y\n");
    write_atomically(dir / "other", "z\n");
    write_in_place(dir / "endpoints.bak", "y\n");  // a name that starts with the file's name
    REQUIRE(::chmod((dir / "other").c_str(), 0600) == 0);
    REQUIRE(::mkdir((dir / "subdir").c_str(), 0755) == 0);
    REQUIRE(::unlink((dir / "other").c_str()) == 0);
    REQUIRE(::chmod(dir.path.c_str(), 0700) == 0);  // the directory's own attributes
    run_for(loop, kQuiet);
    CHECK(counting.calls == 0);
    // Still watching: the file itself is seen.
    REQUIRE(::chmod((dir / "endpoints").c_str(), 0600) == 0);
    run_for(loop, kWait);
    CHECK(counting.calls == 1);
}

TEST_CASE("file watch: a burst of changes is one call", "[file_watch]") {
    TempDir dir;
    Loop loop;
    CountingWatch counting(loop, dir / "endpoints");

    SECTION("many changes queued before the loop looks") {
        for (int i = 0; i < 50; ++i) {
            write_in_place(dir / "endpoints", std::to_string(i));
            write_atomically(dir / "endpoints", std::to_string(i));
            REQUIRE(::chmod((dir / "endpoints").c_str(), i % 2 == 0 ? 0600 : 0644) == 0);
        }
        run_for(loop, kWait);
        CHECK(counting.calls == 1);
        run_for(loop, kQuiet);
        CHECK(counting.calls == 1);
        // A later change is a call of its own.
        write_atomically(dir / "endpoints", "later");
        run_for(loop, kWait);
        CHECK(counting.calls == 2);
    }

    SECTION("a writer that pauses less than the debounce between writes, seen as it goes") {
        // A long debounce so that the machine's scheduling noise cannot split the burst.
        CountingWatch slow(loop, dir / "slow", 400);
        struct Writer final : Timer {
            Loop& loop;
            std::string path;
            int writes = 0;
            Millis last_write = 0;
            Writer(Loop& l, std::string p) : loop(l), path(std::move(p)) {}
            void on_timer() override {
                write_in_place(path, "line " + std::to_string(writes) + "\n");
                last_write = monotonic_millis();
                if (++writes < 10) loop.arm_timer_after(*this, 10);
            }
        } writer(loop, dir / "slow");
        loop.arm_timer_after(writer, 0);
        run_for(loop, kWait);  // the first call stops the loop
        CHECK(writer.writes == 10);
        CHECK(slow.calls == 1);
        CHECK(slow.last_call - writer.last_write >= 400);
        run_for(loop, kQuiet);
        CHECK(slow.calls == 1);
        CHECK(counting.calls == 0);
    }
}

TEST_CASE("file watch: deleting or renaming the file away is reported", "[file_watch]") {
    TempDir dir;
    write_in_place(dir / "endpoints", "x\n");
    Loop loop;
    CountingWatch counting(loop, dir / "endpoints");

    SECTION("unlink") { REQUIRE(::unlink((dir / "endpoints").c_str()) == 0); }
    SECTION("rename away") {
        REQUIRE(::rename((dir / "endpoints").c_str(), (dir / "endpoints.old").c_str()) == 0);
    }
    run_for(loop, kWait);
    CHECK(counting.calls == 1);
    CHECK(counting.watch.watching());
}

TEST_CASE("file watch: the directory's removal stops the watch and says why", "[file_watch]") {
    TempDir parent;
    const std::string dir = parent / "conf";
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    write_in_place(dir + "/endpoints", "x\n");
    Loop loop;
    CountingWatch counting(loop, dir + "/endpoints");

    std::string expected;
    SECTION("removed") {
        REQUIRE(::unlink((dir + "/endpoints").c_str()) == 0);
        REQUIRE(::rmdir(dir.c_str()) == 0);
        expected = "directory " + dir + " was deleted; no longer watching " + dir + "/endpoints";
    }
    SECTION("renamed") {
        REQUIRE(::rename(dir.c_str(), (parent / "conf.old").c_str()) == 0);
        expected = "directory " + dir + " was renamed; no longer watching " + dir + "/endpoints";
    }
    run_for(loop, kWait);
    CHECK(counting.calls == 1);  // one last look, right away
    CHECK_FALSE(counting.watch.watching());
    CHECK(counting.watch.failure() == expected);
    // Nothing more comes, even if the directory is made again.
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    write_in_place(dir + "/endpoints", "x\n");
    run_for(loop, kQuiet);
    CHECK(counting.calls == 1);
    CHECK(loop.operations_in_flight() == 0);
}

TEST_CASE("file watch: a full inotify queue counts as a change", "[file_watch]") {
    long max_queued = 0;
    std::ifstream("/proc/sys/fs/inotify/max_queued_events") >> max_queued;
    if (max_queued <= 0 || max_queued > 100'000) {
        WARN("fs.inotify.max_queued_events is " << max_queued << ": overflow not tested");
        return;
    }
    TempDir dir;
    write_in_place(dir / "endpoints", "x\n");
    write_in_place(dir / "other", "x\n");
    Loop loop;
    CountingWatch counting(loop, dir / "endpoints");
    // inotify merges an event identical to the last one queued: alternate two names.
    const std::string other = dir / "other";
    const std::string endpoints = dir / "endpoints";
    long failed = 0;
    for (long i = 0; i <= max_queued / 2 + 10; ++i) {
        failed += ::chmod(other.c_str(), 0644) != 0;
        failed += ::chmod(endpoints.c_str(), 0644) != 0;
    }
    REQUIRE(failed == 0);
    run_for(loop, kWait);
    CHECK(counting.watch.overflows() == 1);
    CHECK(counting.calls == 1);
    run_for(loop, kQuiet);
    CHECK(counting.calls == 1);
    CHECK(counting.watch.watching());
}

TEST_CASE("file watch: destroying the watch with events pending is clean", "[file_watch]") {
    TempDir dir;
    Loop loop;
    int calls = 0;

    SECTION("events queued in inotify, never read") {
        auto watch = std::make_unique<FileWatch>(loop, dir / "endpoints", [&] { ++calls; });
        write_in_place(dir / "endpoints", "x\n");
        watch.reset();
    }
    SECTION("events read, the debounce timer armed") {
        auto watch = std::make_unique<FileWatch>(loop, dir / "endpoints", [&] { ++calls; }, 500);
        write_in_place(dir / "endpoints", "x\n");
        run_for(loop, 100);
        CHECK(calls == 0);
        watch.reset();
    }
    SECTION("destroyed by its own callback") {
        std::unique_ptr<FileWatch> watch;
        watch = std::make_unique<FileWatch>(loop, dir / "endpoints", [&] {
            ++calls;
            watch.reset();
            loop.stop();
        });
        write_in_place(dir / "endpoints", "x\n");
        run_for(loop, kWait / 2);
        CHECK(calls == 1);
        CHECK(watch == nullptr);
        calls = 0;
    }
    write_in_place(dir / "endpoints", "y\n");
    run_for(loop, 700);
    CHECK(calls == 0);
    CHECK(loop.operations_in_flight() == 0);
}

TEST_CASE("file watch: a path whose directory cannot be watched is refused", "[file_watch]") {
    TempDir dir;
    Loop loop;
    const auto nothing = [] {};
    SECTION("missing directory") {
        const std::string missing = dir / "missing";
        try {
            FileWatch watch(loop, missing + "/endpoints", nothing);
            FAIL("no exception");
        } catch (const std::system_error& error) {
            CHECK(error.code().value() == ENOENT);
            CHECK_THAT(error.what(), Catch::Contains("directory " + missing + " of " + missing +
                                                     "/endpoints"));
        }
    }
    SECTION("the directory is a file") {
        write_in_place(dir / "file", "");
        try {
            FileWatch watch(loop, dir / "file/endpoints", nothing);
            FAIL("no exception");
        } catch (const std::system_error& error) {
            CHECK(error.code().value() == ENOTDIR);
        }
    }
    SECTION("no file name") {
        CHECK_THROWS_AS(FileWatch(loop, dir.path + "/", nothing), std::invalid_argument);
        CHECK_THROWS_AS(FileWatch(loop, "", nothing), std::invalid_argument);
        CHECK_THROWS_AS(FileWatch(loop, dir / "..", nothing), std::invalid_argument);
    }
    CHECK(loop.operations_in_flight() == 0);
}
