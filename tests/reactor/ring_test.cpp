#include "reactor/acceptor.h"
#include "reactor/loop.h"
#include "reactor/ring.h"
#include "reactor/socket.h"
#include "reactor/timer.h"

#include "tests/reactor/helpers.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

using namespace passgate::reactor;

using reactor_test::connect_blocking;
using reactor_test::loopback;
using reactor_test::StopAfter;

TEST_CASE("ring: the baseline set-up has no flags and accepts one connection per operation", "[ring]") {
    RingOptions options;
    options.baseline = true;
    Loop loop(options);
    CHECK(loop.features().baseline);
    CHECK_FALSE(loop.features().single_issuer);
    CHECK_FALSE(loop.features().defer_taskrun);
    CHECK_FALSE(loop.features().coop_taskrun);
    CHECK_FALSE(loop.features().multishot_accept);
    CHECK(loop.features().describe().find("oneshot_accept (baseline forced by PASSGATE_IO_URING)") !=
          std::string::npos);

    // The one-shot accept path is re-armed after each connection: all 20 pending ones arrive.
    const sockaddr_in any_port = loopback(0);
    Fd listener = listen_tcp(reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port);
    std::vector<Fd> clients;
    for (int i = 0; i < 20; ++i) clients.push_back(connect_blocking(local_port(listener.get())));
    std::vector<Fd> accepted;
    Acceptor acceptor(loop, listener.get(), [&](Fd socket) {
        accepted.push_back(std::move(socket));
        if (accepted.size() == clients.size()) loop.stop();
    });
    StopAfter bound_in_time(loop);
    loop.arm_timer_after(bound_in_time, 5000);
    loop.run();
    CHECK(accepted.size() == clients.size());
}

TEST_CASE("ring: the default set-up follows PASSGATE_IO_URING; unset, this kernel gets the best", "[ring]") {
    const char* mode = std::getenv("PASSGATE_IO_URING");
    const bool baseline = mode != nullptr && std::string(mode) == "baseline";
    Loop loop;
    CHECK(loop.features().baseline == baseline);
    CHECK(loop.features().single_issuer == !baseline);  // this machine's kernel is 6.x
    CHECK(loop.features().defer_taskrun == !baseline);
    CHECK(loop.features().multishot_accept == !baseline);
}

TEST_CASE("ring: PASSGATE_IO_URING takes only \"baseline\"", "[ring]") {
    const char* suite_value = std::getenv("PASSGATE_IO_URING");
    const std::string saved = suite_value ? suite_value : "";
    REQUIRE(::setenv("PASSGATE_IO_URING", "fast", 1) == 0);
    CHECK_THROWS_WITH(RingOptions::baseline_from_environment(),
                      "environment variable PASSGATE_IO_URING=\"fast\": the only value is \"baseline\"");
    REQUIRE(::setenv("PASSGATE_IO_URING", "baseline", 1) == 0);
    CHECK(RingOptions::baseline_from_environment());
    if (saved.empty()) REQUIRE(::unsetenv("PASSGATE_IO_URING") == 0);
    else REQUIRE(::setenv("PASSGATE_IO_URING", saved.c_str(), 1) == 0);
}

TEST_CASE("ring: a close goes with the loop's next submission; baseline mode calls close(2) at once",
          "[ring]") {
    for (const bool baseline : {false, true}) {
        CAPTURE(baseline);
        RingOptions options;
        options.baseline = baseline;
        Loop loop(options);
        CHECK(loop.features().async_close == !baseline);  // this machine's kernel has it
        int closing[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, closing) == 0);
        const Fd closed_peer(closing[1]);
        loop.close(Fd(closing[0]));
        // Queued on the ring, nothing has happened yet (the peer reads EAGAIN); done at once in
        // baseline mode (it reads its end of stream).
        char byte = 0;
        CHECK(::recv(closed_peer.get(), &byte, 1, 0) == (baseline ? 0 : -1));
        // Submitted with the loop's next trip: the peer sees its end of stream then. Awaited,
        // bounded to 5 s (a 1 ms timer armed from the loop's cached clock may fire before the
        // first submission on a slow machine: the ASan build in CI did).
        const Millis give_up = monotonic_millis() + 5000;
        bool closed_seen = false;
        while (!closed_seen && monotonic_millis() < give_up) {
            loop.update_now();
            StopAfter one_trip(loop);
            loop.arm_timer_after(one_trip, 1);
            loop.run();
            closed_seen = ::recv(closed_peer.get(), &byte, 1, 0) == 0;
        }
        CHECK(closed_seen);
    }
}
