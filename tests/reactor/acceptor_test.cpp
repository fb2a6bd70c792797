#include "reactor/acceptor.h"
#include "reactor/socket.h"

#include "tests/reactor/helpers.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>

#include <vector>

using namespace passgate::reactor;

using reactor_test::connect_blocking;
using reactor_test::loopback;
using reactor_test::StopAfter;

TEST_CASE("multishot accept takes every pending connection as a non-blocking socket") {
    Loop loop;
    const sockaddr_in any_port = loopback(0);
    Fd listener = listen_tcp(reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port);
    const int port = local_port(listener.get());
    std::vector<Fd> accepted;
    Acceptor acceptor(loop, listener.get(), [&](Fd socket) {
        accepted.push_back(std::move(socket));
        if (accepted.size() == 50) loop.stop();
    });
    std::vector<Fd> clients;
    for (int i = 0; i < 50; ++i) clients.push_back(connect_blocking(port));
    loop.run();
    REQUIRE(accepted.size() == 50);
    for (const Fd& socket : accepted) CHECK((::fcntl(socket.get(), F_GETFL) & O_NONBLOCK) != 0);
}

TEST_CASE("accepted sockets inherit TCP_NODELAY from a listener set up with no_delay") {
    Loop loop;
    const sockaddr_in any_port = loopback(0);
    Fd plain = listen_tcp(reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port);
    Fd no_delay = listen_tcp(reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port,
                             ListenOptions{.no_delay = true});
    std::vector<Fd> from_plain, from_no_delay;
    const auto stop_when_both = [&] {
        if (!from_plain.empty() && !from_no_delay.empty()) loop.stop();
    };
    Acceptor plain_acceptor(loop, plain.get(), [&](Fd socket) {
        from_plain.push_back(std::move(socket));
        stop_when_both();
    });
    Acceptor no_delay_acceptor(loop, no_delay.get(), [&](Fd socket) {
        from_no_delay.push_back(std::move(socket));
        stop_when_both();
    });
    Fd first = connect_blocking(local_port(plain.get()));
    Fd second = connect_blocking(local_port(no_delay.get()));
    loop.run();
    REQUIRE(from_plain.size() == 1);
    REQUIRE(from_no_delay.size() == 1);
    const auto nodelay_of = [](int fd) {
        int value = -1;
        socklen_t length = sizeof value;
        REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &length) == 0);
        return value;
    };
    CHECK(nodelay_of(from_no_delay[0].get()) == 1);
    CHECK(nodelay_of(from_plain[0].get()) == 0);
}

TEST_CASE("two SO_REUSEPORT sockets bind the same address") {
    const sockaddr_in any_port = loopback(0);
    Fd first = listen_tcp(reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port);
    const sockaddr_in same = loopback(local_port(first.get()));
    Fd second = listen_tcp(reinterpret_cast<const sockaddr*>(&same), sizeof same);
    CHECK(local_port(second.get()) == local_port(first.get()));
    // Without SO_REUSEPORT the same bind is refused, with errno in the message.
    CHECK_THROWS_WITH(listen_tcp(reinterpret_cast<const sockaddr*>(&same), sizeof same,
                                 ListenOptions{.backlog = 16, .reuse_port = false}),
                      Catch::Contains("bind"));
}

TEST_CASE("out of descriptors: the acceptor backs off without spinning and recovers") {
    Loop loop;
    const sockaddr_in any_port = loopback(0);
    Fd listener = listen_tcp(reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port);
    const int port = local_port(listener.get());
    std::vector<Fd> accepted;
    Acceptor acceptor(loop, listener.get(), [&](Fd socket) { accepted.push_back(std::move(socket)); });

    // Fill the descriptor table up to a lowered soft limit.
    rlimit original{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &original) == 0);
    std::vector<Fd> clients;
    for (int i = 0; i < 5; ++i) clients.push_back(connect_blocking(port));
    std::vector<Fd> fillers;
    {
        rlimit lowered = original;
        int highest = 0;
        for (int i = 0; i < 64; ++i) {
            fillers.emplace_back(::dup(0));
            highest = std::max(highest, fillers.back().get());
        }
        lowered.rlim_cur = static_cast<rlim_t>(highest + 1);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    }
    StopAfter stop(loop);
    loop.arm_timer_after(stop, 300);
    loop.run();
    const std::uint64_t errors = acceptor.accept_errors();
    CHECK(errors >= 1);
    CHECK(errors <= 12);  // 10, 20, 40, 80, 160 ms back-off: a handful of tries, not a spin
    CHECK(acceptor.last_error() == EMFILE);
    CHECK(accepted.empty());
    // Free descriptors: the pending connections are accepted after the back-off.
    fillers.clear();
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &original) == 0);
    loop.arm_timer_after(stop, 1500);
    loop.run();
    CHECK(accepted.size() == 5);
}

namespace {
// Stops the loop once the acceptor's last completion came (checked every millisecond).
struct StopWhenFinished final : passgate::reactor::Timer {
    Loop& loop;
    const Acceptor* acceptor = nullptr;
    explicit StopWhenFinished(Loop& l) : loop(l) {}
    void on_timer() override {
        if (acceptor->finished()) return loop.stop();
        loop.arm_timer_after(*this, 1);
    }
};
}  // namespace

// An upgrade's old process stops accepting on sockets the new process keeps accepting on:
// a connection the kernel accepted for the cancelled operation must be served, not closed, and
// the ones it did not accept stay in the backlog for the other process.
TEST_CASE("finish() stops accepting but hands over the connections accepted before the cancel took effect") {
    Loop loop;
    const sockaddr_in any_port = loopback(0);
    Fd listener = listen_tcp(reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port);
    const int port = local_port(listener.get());
    std::vector<Fd> clients;
    for (int i = 0; i < 5; ++i) clients.push_back(connect_blocking(port));
    std::vector<Fd> accepted;
    // The accept and the cancel go to the kernel in one submission: the accept takes waiting
    // connections first (all five with multishot accept; one with the one-shot accepts of old
    // kernels, PASSGATE_IO_URING=baseline).
    Acceptor acceptor(loop, listener.get(), [&](Fd socket) { accepted.push_back(std::move(socket)); });
    acceptor.finish();
    CHECK_FALSE(acceptor.finished());  // its last completion has not come yet
    StopWhenFinished stop(loop);
    stop.acceptor = &acceptor;
    loop.arm_timer_after(stop, 1);
    StopAfter give_up(loop);
    loop.arm_timer_after(give_up, 5000);
    loop.run();
    REQUIRE(acceptor.finished());
    CHECK(accepted.size() >= 1);
    // Nothing more is accepted after finish; what is left waits in the backlog, open.
    clients.push_back(connect_blocking(port));
    loop.arm_timer_after(give_up, 50);
    loop.run();
    const std::size_t handed = accepted.size();
    std::size_t waiting = 0;
    const int flags = ::fcntl(listener.get(), F_GETFL);
    REQUIRE(::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) == 0);
    while (Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC))) ++waiting;
    // Every connection is either handed to on_accept or still waiting: none was closed.
    CHECK(handed + waiting == 6);
}

// A worker holding too many connections pauses accepting and leaves new ones to the kernel's
// listen queue; resuming takes them all, also when the resume comes before the cancel's last
// completion did.
TEST_CASE("pause() leaves new connections in the listen queue; resume() takes them all") {
    Loop loop;
    const sockaddr_in any_port = loopback(0);
    Fd listener = listen_tcp(reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port);
    const int port = local_port(listener.get());
    std::vector<Fd> accepted;
    std::size_t wanted = 0;
    Acceptor acceptor(loop, listener.get(), [&](Fd socket) {
        accepted.push_back(std::move(socket));
        if (accepted.size() == wanted) loop.stop();
    });
    StopAfter give_up(loop);
    std::vector<Fd> clients;

    // Running: two connections are accepted.
    wanted = 2;
    for (int i = 0; i < 2; ++i) clients.push_back(connect_blocking(port));
    loop.arm_timer_after(give_up, 5000);
    loop.run();
    REQUIRE(accepted.size() == 2);

    // Paused (its cancel comes back in this run): three more wait in the kernel's queue.
    acceptor.pause();
    CHECK(acceptor.paused());
    loop.arm_timer_after(give_up, 50);
    loop.run();
    for (int i = 0; i < 3; ++i) clients.push_back(connect_blocking(port));
    loop.arm_timer_after(give_up, 100);
    loop.run();
    CHECK(accepted.size() == 2);

    // Resumed: the three are taken.
    acceptor.resume();
    CHECK_FALSE(acceptor.paused());
    wanted = 5;
    loop.arm_timer_after(give_up, 5000);
    loop.run();
    CHECK(accepted.size() == 5);

    // Paused and resumed before the loop ran (the cancel's last completion comes after the
    // resume): still accepting.
    acceptor.pause();
    acceptor.resume();
    wanted = 7;
    for (int i = 0; i < 2; ++i) clients.push_back(connect_blocking(port));
    loop.arm_timer_after(give_up, 5000);
    loop.run();
    CHECK(accepted.size() == 7);
    CHECK(acceptor.accept_errors() == 0);
}

// The bound a worker keeps with [runtime] pause_accepting_at: with one_at_a_time accepts, a pause
// from on_accept takes effect before the next connection, even with a full listen queue (a
// multishot accept would have taken all ten in one go).
TEST_CASE("one_at_a_time accepts: a pause from on_accept holds the count exactly") {
    Loop loop;
    const sockaddr_in any_port = loopback(0);
    Fd listener = listen_tcp(reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port);
    const int port = local_port(listener.get());
    std::vector<Fd> clients;
    for (int i = 0; i < 10; ++i) clients.push_back(connect_blocking(port));
    std::vector<Fd> accepted;
    std::size_t bound = 3;
    Acceptor* self = nullptr;
    Acceptor acceptor(
        loop, listener.get(),
        [&](Fd socket) {
            accepted.push_back(std::move(socket));
            if (accepted.size() >= bound) self->pause();
        },
        {}, Watch::AcceptMode::one_at_a_time);
    self = &acceptor;
    StopAfter stop(loop);
    loop.arm_timer_after(stop, 100);
    loop.run();
    CHECK(accepted.size() == 3);
    bound = 8;
    acceptor.resume();
    loop.arm_timer_after(stop, 100);
    loop.run();
    CHECK(accepted.size() == 8);
    bound = 100;
    acceptor.resume();
    loop.arm_timer_after(stop, 100);
    loop.run();
    CHECK(accepted.size() == 10);
    CHECK(acceptor.accept_errors() == 0);
}
