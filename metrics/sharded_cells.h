#pragma once
// The storage behind one series: a few 64-bit cells per shard (per worker thread). Each shard's
// cells start on their own 64-byte cache line, so two workers bumping the same series never write
// to the same line (no false sharing).
//
// Concurrency contract (why there is no lock and no fetch_add):
// - A shard's cells are written only by the thread that owns the shard, with a relaxed load and a
//   relaxed store. No other thread writes them, so the read-modify-write cannot lose an update,
//   and no locked instruction is needed on the hot path.
// - The scraper (any thread) reads every shard with relaxed loads and sums them. It can see a
//   value that is a few increments old, never a torn one.
// Doubles (gauge values, histogram sums) are kept as their bit patterns in the same 64-bit cells.
// A single count outside a registry (a worker's totals, the log writers' counts) uses
// metrics::OwnedCounter (owned_counter.h): the same contract for one value.

#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace passgate::metrics {

class ShardedCells {
public:
    // No allocation when cells_per_shard is 0 (callback series have no cells).
    ShardedCells(std::size_t shards, std::size_t cells_per_shard);

    std::size_t shards() const { return shards_; }
    std::size_t cells_per_shard() const { return cells_per_shard_; }

    // Owner-thread updates of one shard's cell.
    void add(std::size_t shard, std::size_t index, std::uint64_t n) const {
        std::atomic<std::uint64_t>& c = cell(shard, index);
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void add_double(std::size_t shard, std::size_t index, double delta) const {
        std::atomic<std::uint64_t>& c = cell(shard, index);
        const double now = std::bit_cast<double>(c.load(std::memory_order_relaxed));
        c.store(std::bit_cast<std::uint64_t>(now + delta), std::memory_order_relaxed);
    }
    void store_double(std::size_t shard, std::size_t index, double value) const {
        cell(shard, index).store(std::bit_cast<std::uint64_t>(value), std::memory_order_relaxed);
    }
    void store(std::size_t shard, std::size_t index, std::uint64_t value) const {
        cell(shard, index).store(value, std::memory_order_relaxed);
    }

    // Any thread: one shard's cell as its owner last stored it (a relaxed load, like sum()).
    std::uint64_t load(std::size_t shard, std::size_t index) const {
        return cell(shard, index).load(std::memory_order_relaxed);
    }

    // Scraper reads: the cell summed over all shards.
    std::uint64_t sum(std::size_t index) const;
    double sum_double(std::size_t index) const;

private:
    static constexpr std::size_t cache_line_bytes = 64;
    static constexpr std::size_t cells_per_line = cache_line_bytes / sizeof(std::uint64_t);
    struct alignas(cache_line_bytes) CacheLine {
        std::atomic<std::uint64_t> cells[cells_per_line];  // zero-initialized (C++20 atomics)
    };

    std::atomic<std::uint64_t>& cell(std::size_t shard, std::size_t index) const {
        assert(shard < shards_ && index < cells_per_shard_);
        CacheLine& line = lines_[shard * lines_per_shard_ + index / cells_per_line];
        return line.cells[index % cells_per_line];
    }

    std::size_t shards_;
    std::size_t cells_per_shard_;
    std::size_t lines_per_shard_;
    std::unique_ptr<CacheLine[]> lines_;  // shards_ * lines_per_shard_ lines, shard-major
};

}  // namespace passgate::metrics
