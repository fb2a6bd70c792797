#include "reactor/channel.h"

#include <catch2/catch.hpp>

#include <memory>
#include <thread>
#include <vector>

using namespace passgate::reactor;

TEST_CASE("a channel is bounded and keeps order") {
    Channel<int> channel(3);
    CHECK(channel.try_send(1));
    CHECK(channel.try_send(2));
    CHECK(channel.try_send(3));
    CHECK_FALSE(channel.try_send(4));  // full: refused, not queued
    CHECK(channel.try_receive() == 1);
    CHECK(channel.try_send(5));
    CHECK(channel.try_receive() == 2);
    CHECK(channel.try_receive() == 3);
    CHECK(channel.try_receive() == 5);
    CHECK_FALSE(channel.try_receive().has_value());
}

TEST_CASE("a message refused by a full channel stays with the sender") {
    Channel<std::unique_ptr<int>> channel(1);
    auto first = std::make_unique<int>(1);
    auto second = std::make_unique<int>(2);
    REQUIRE(channel.try_send(std::move(first)));
    CHECK_FALSE(channel.try_send(std::move(second)));
    REQUIRE(second != nullptr);  // not moved from: the sender still has it to retry
    CHECK(*second == 2);
    CHECK(*channel.try_receive().value() == 1);
    CHECK(channel.try_send(std::move(second)));
    CHECK(second == nullptr);
    CHECK(*channel.try_receive().value() == 2);
}

TEST_CASE("messages from another thread wake the receiving loop, all of them, in order") {
    Loop loop;
    Channel<std::unique_ptr<int>> channel(16);
    std::vector<int> received;
    constexpr int total = 20000;
    ChannelReceiver<std::unique_ptr<int>> receiver(loop, channel, [&](std::unique_ptr<int> value) {
        received.push_back(*value);
        if (*value == total - 1) loop.stop();
    });
    std::thread producer([&] {
        for (int i = 0; i < total; ++i) {
            auto value = std::make_unique<int>(i);
            while (!channel.try_send(std::move(value))) {
                value = std::make_unique<int>(i);  // not taken when full: retry
                std::this_thread::yield();
            }
        }
    });
    loop.run();
    producer.join();
    REQUIRE(received.size() == static_cast<size_t>(total));
    for (int i = 0; i < total; ++i) REQUIRE(received[static_cast<size_t>(i)] == i);
}
