#include "reactor/fd.h"
#include "reactor/loop.h"

#include "tests/reactor/helpers.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <memory>
#include <vector>

using namespace passgate::reactor;
using reactor_test::StopAfter;

namespace {
struct Pipe {
    Fd read_end, write_end;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        read_end = Fd(fds[0]);
        write_end = Fd(fds[1]);
    }
};

struct Reader final : WatchHandler {
    int fd;
    std::vector<int> results;
    std::string data;
    Loop* stop_on_data = nullptr;
    explicit Reader(int f) : fd(f) {}
    void on_watch(int result) override {
        results.push_back(result);
        char buffer[64];
        ssize_t n;
        while ((n = ::read(fd, buffer, sizeof buffer)) > 0) data.append(buffer, static_cast<size_t>(n));
        if (stop_on_data) stop_on_data->stop();
    }
};
}  // namespace

TEST_CASE("the ring is set up with the best flags this kernel accepts") {
    RingOptions options;
    options.baseline = false;  // also in the `fallback` suite, which sets PASSGATE_IO_URING=baseline
    Loop loop(options);
    const RingFeatures& features = loop.features();
    INFO(features.describe());
    CHECK(features.ext_arg);
    CHECK(features.cq_entries >= 8192);
    // This project targets kernel 6.1+: both flags must have been accepted there.
    CHECK(features.single_issuer);
    CHECK(features.defer_taskrun);
}

TEST_CASE("a timer ends run() at its deadline, not before") {
    Loop loop;
    StopAfter stop(loop);
    const Millis start = monotonic_millis();
    loop.arm_timer_after(stop, 50);
    loop.run();
    CHECK(monotonic_millis() - start >= 50);
    CHECK(loop.stats().timers_fired == 1);
}

TEST_CASE("a multishot poll reports each wake-up until stopped") {
    Loop loop;
    Pipe pipe;
    Reader reader(pipe.read_end.get());
    reader.stop_on_data = &loop;
    Watch watch(loop, reader);
    watch.poll(pipe.read_end.get(), POLLIN, true);
    for (int round = 0; round < 3; ++round) {
        REQUIRE(::write(pipe.write_end.get(), "abc", 3) == 3);
        loop.run();
        CHECK(reader.data.size() == static_cast<size_t>(3 * (round + 1)));
    }
    CHECK(reader.results.size() == 3);
    for (int result : reader.results) CHECK((result & POLLIN) != 0);
    CHECK(watch.active());
    watch.stop();
    CHECK_FALSE(watch.active());
    // The cancelled operation returns to the pool once its final completion arrives.
    StopAfter stop(loop);
    loop.arm_timer_after(stop, 20);
    loop.run();
    CHECK(loop.operations_in_flight() == 0);
}

TEST_CASE("a one-shot poll completes once and frees its operation") {
    Loop loop;
    Pipe pipe;
    Reader reader(pipe.read_end.get());
    reader.stop_on_data = &loop;
    Watch watch(loop, reader);
    watch.poll(pipe.read_end.get(), POLLIN, false);
    REQUIRE(::write(pipe.write_end.get(), "x", 1) == 1);
    loop.run();
    CHECK(reader.results.size() == 1);
    CHECK_FALSE(watch.active());
    CHECK(loop.operations_in_flight() == 0);
}

TEST_CASE("a once-then-multishot poll keeps reporting wake-ups, one-shot and then multishot") {
    Loop loop;
    Pipe pipe;
    Reader reader(pipe.read_end.get());
    reader.stop_on_data = &loop;
    Watch watch(loop, reader);
    watch.poll(pipe.read_end.get(), POLLIN, Watch::PollMode::once_then_multishot);
    const int rounds = static_cast<int>(Watch::once_then_multishot_oneshots) + 3;
    for (int round = 0; round < rounds; ++round) {
        REQUIRE(::write(pipe.write_end.get(), "abc", 3) == 3);
        loop.run();
        CHECK(reader.data.size() == static_cast<size_t>(3 * (round + 1)));
        CHECK(watch.active());
    }
    CHECK(reader.results.size() == static_cast<size_t>(rounds));
    watch.stop();
    StopAfter stop(loop);
    loop.arm_timer_after(stop, 20);
    loop.run();
    CHECK(loop.operations_in_flight() == 0);
}

TEST_CASE("a once-then-multishot poll stopped or destroyed by its first handler leaves nothing to cancel") {
    // A detached operation that is still in the kernel stays in flight until its cancel's final
    // completion; this one is out of the kernel while its first handler runs, so it returns to the
    // pool as the handler returns, before any other completion is handled.
    for (const bool destroy : {false, true}) {
        CAPTURE(destroy);
        Loop loop;
        Pipe pipe;
        struct StopsFirst final : WatchHandler {
            Loop& loop;
            std::unique_ptr<Watch> watch;
            bool destroy;
            int calls = 0;
            std::size_t in_flight_after = 99;
            StopsFirst(Loop& l, bool d) : loop(l), destroy(d) {}
            void on_watch(int) override {
                ++calls;
                if (destroy) watch.reset();
                else watch->stop();
                loop.stop();
            }
        } handler(loop, destroy);
        handler.watch = std::make_unique<Watch>(loop, handler);
        handler.watch->poll(pipe.read_end.get(), POLLIN, Watch::PollMode::once_then_multishot);
        REQUIRE(::write(pipe.write_end.get(), "x", 1) == 1);
        loop.run();
        CHECK(handler.calls == 1);
        CHECK(loop.operations_in_flight() == 0);
        if (!destroy) CHECK_FALSE(handler.watch->active());
        const std::uint64_t submitted = loop.stats().submissions;
        REQUIRE(::write(pipe.write_end.get(), "y", 1) == 1);  // no further wake-up reaches anyone
        StopAfter stop(loop);
        loop.arm_timer_after(stop, 20);
        loop.run();
        CHECK(handler.calls == 1);
        CHECK(loop.stats().submissions == submitted);  // no cancel was queued
    }
}

TEST_CASE("an owner destroyed with a poll in flight gets no completion") {
    Loop loop;
    Pipe pipe;
    auto reader = std::make_unique<Reader>(pipe.read_end.get());
    auto watch = std::make_unique<Watch>(loop, *reader);
    watch->poll(pipe.read_end.get(), POLLIN, true);
    StopAfter stop(loop);
    loop.arm_timer_after(stop, 10);
    loop.run();  // the poll is armed in the kernel now
    watch.reset();
    reader.reset();  // freed; a stray completion would be a use-after-free under ASan
    REQUIRE(::write(pipe.write_end.get(), "x", 1) == 1);
    loop.arm_timer_after(stop, 20);
    loop.run();
    CHECK(loop.operations_in_flight() == 0);
}

TEST_CASE("a handler may destroy its own watch from inside the callback") {
    Loop loop;
    Pipe pipe;
    struct SelfDestroying final : WatchHandler {
        Loop& loop;
        std::unique_ptr<Watch> watch;
        int calls = 0;
        explicit SelfDestroying(Loop& l) : loop(l) {}
        void on_watch(int) override {
            ++calls;
            watch.reset();
            loop.stop();
        }
    } handler(loop);
    handler.watch = std::make_unique<Watch>(loop, handler);
    handler.watch->poll(pipe.read_end.get(), POLLIN, true);
    REQUIRE(::write(pipe.write_end.get(), "x", 1) == 1);
    loop.run();
    REQUIRE(::write(pipe.write_end.get(), "y", 1) == 1);
    StopAfter stop(loop);
    loop.arm_timer_after(stop, 20);
    loop.run();
    CHECK(handler.calls == 1);
    CHECK(loop.operations_in_flight() == 0);
}

namespace {
// Owned by a table, like a connection by its worker: on its first event it takes itself out of
// the table and hands itself to defer_destroy, then goes on using its own members.
struct Retiring final : WatchHandler {
    Loop& loop;
    std::vector<std::unique_ptr<Retiring>>& table;
    int& destroyed;
    Watch watch;
    std::string after_retire;
    std::vector<int>* deferred_while_running = nullptr;
    Retiring(Loop& l, std::vector<std::unique_ptr<Retiring>>& t, int& d)
        : loop(l), table(t), destroyed(d), watch(l, *this) {}
    ~Retiring() { ++destroyed; }
    void on_watch(int) override {
        loop.defer_destroy(std::move(table.back()));
        table.pop_back();
        // Still alive until the batch ends: a use-after-free under ASan if it were freed now.
        after_retire = "still here";
        if (deferred_while_running) deferred_while_running->push_back(destroyed);
        watch.stop();
        loop.stop();
    }
};

struct Counted {
    int& destroyed;
    ~Counted() { ++destroyed; }
};

// Defers another object from its destructor (an owner retiring what it holds).
struct DefersInDestructor {
    Loop& loop;
    int& destroyed;
    ~DefersInDestructor() {
        ++destroyed;
        loop.defer_destroy(std::unique_ptr<Counted>(new Counted{destroyed}));
    }
};
}  // namespace

TEST_CASE("defer_destroy frees a handler's own owner after the batch, before the batch-end hook") {
    Loop loop;
    Pipe pipe;
    int destroyed = 0;
    std::vector<int> destroyed_during_handler;
    std::vector<int> destroyed_at_batch_end;
    std::vector<std::unique_ptr<Retiring>> table;
    table.push_back(std::make_unique<Retiring>(loop, table, destroyed));
    table.back()->deferred_while_running = &destroyed_during_handler;
    table.back()->watch.poll(pipe.read_end.get(), POLLIN, true);
    loop.set_batch_end([&] { destroyed_at_batch_end.push_back(destroyed); });
    REQUIRE(::write(pipe.write_end.get(), "x", 1) == 1);
    loop.run();
    CHECK(table.empty());
    REQUIRE(destroyed_during_handler.size() == 1);
    CHECK(destroyed_during_handler[0] == 0);  // not freed inside its own handler
    CHECK(destroyed == 1);                    // freed when the batch ended
    REQUIRE_FALSE(destroyed_at_batch_end.empty());
    CHECK(destroyed_at_batch_end.back() == 1);  // the hook sees it gone
    CHECK(loop.deferred_count() == 0);
    StopAfter stop(loop);
    loop.arm_timer_after(stop, 20);
    loop.run();
    CHECK(loop.operations_in_flight() == 0);
}

TEST_CASE("defer_destroy from a timer frees after the timers of that batch") {
    Loop loop;
    int destroyed = 0;
    struct Retire final : Timer {
        Loop& loop;
        std::unique_ptr<DefersInDestructor> object;
        int& destroyed;
        int destroyed_in_handler = -1;
        Retire(Loop& l, int& d) : loop(l), destroyed(d) {}
        void on_timer() override {
            loop.defer_destroy(std::move(object));
            destroyed_in_handler = destroyed;
            loop.stop();
        }
    } retire(loop, destroyed);
    retire.object.reset(new DefersInDestructor{loop, destroyed});
    loop.arm_timer_after(retire, 1);
    loop.run();
    CHECK(retire.destroyed_in_handler == 0);
    // Both: the object, and what its destructor deferred in turn, freed in the same pass.
    CHECK(destroyed == 2);
    CHECK(loop.deferred_count() == 0);
}

TEST_CASE("objects deferred outside run() are freed by free_deferred or with the loop") {
    int destroyed = 0;
    {
        Loop loop;
        loop.defer_destroy(std::unique_ptr<DefersInDestructor>(new DefersInDestructor{loop, destroyed}));
        CHECK(destroyed == 0);
        loop.free_deferred();
        CHECK(destroyed == 2);
        loop.defer_destroy(std::unique_ptr<DefersInDestructor>(new DefersInDestructor{loop, destroyed}));
        loop.defer_destroy(std::unique_ptr<DefersInDestructor>());  // nothing to defer
        CHECK(loop.deferred_count() == 1);
    }
    CHECK(destroyed == 4);
}

TEST_CASE("operations are pooled: many arm/stop cycles reuse a bounded set") {
    Loop loop;
    Pipe pipe;
    Reader reader(pipe.read_end.get());
    StopAfter stop(loop);
    for (int cycle = 0; cycle < 1000; ++cycle) {
        Watch watch(loop, reader);
        watch.poll(pipe.read_end.get(), POLLIN, true);
        if (cycle % 100 == 99) {
            loop.arm_timer_after(stop, 1);
            loop.run();
        }
    }
    loop.arm_timer_after(stop, 20);
    loop.run();
    CHECK(loop.operations_in_flight() == 0);
    CHECK(loop.stats().completions >= 1000);
}
