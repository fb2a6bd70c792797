#include "metrics/sharded_cells.h"

namespace passgate::metrics {

ShardedCells::ShardedCells(std::size_t shards, std::size_t cells_per_shard)
    : shards_(shards),
      cells_per_shard_(cells_per_shard),
      lines_per_shard_((cells_per_shard + cells_per_line - 1) / cells_per_line),
      lines_(lines_per_shard_ == 0 ? nullptr : new CacheLine[shards * lines_per_shard_]) {}

std::uint64_t ShardedCells::sum(std::size_t index) const {
    std::uint64_t total = 0;
    for (std::size_t shard = 0; shard < shards_; ++shard)
        total += cell(shard, index).load(std::memory_order_relaxed);
    return total;
}

double ShardedCells::sum_double(std::size_t index) const {
    double total = 0;
    for (std::size_t shard = 0; shard < shards_; ++shard)
        total += std::bit_cast<double>(cell(shard, index).load(std::memory_order_relaxed));
    return total;
}

}  // namespace passgate::metrics
