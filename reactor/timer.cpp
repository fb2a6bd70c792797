#include "reactor/timer.h"

#include <cassert>

namespace passgate::reactor {

Timer::~Timer() {
    if (heap_ != nullptr) heap_->cancel(*this);
}

TimerHeap::~TimerHeap() {
    for (Timer* timer : heap_) timer->heap_ = nullptr;
}

void TimerHeap::arm(Timer& timer, Millis deadline) {
    assert(timer.heap_ == nullptr || timer.heap_ == this);
    if (timer.heap_ == this) {
        const Millis old = timer.deadline_;
        timer.deadline_ = deadline;
        if (deadline < old) sift_up(timer.index_);
        else sift_down(timer.index_);
        return;
    }
    timer.heap_ = this;
    timer.deadline_ = deadline;
    heap_.push_back(&timer);
    timer.index_ = heap_.size() - 1;
    sift_up(timer.index_);
}

void TimerHeap::cancel(Timer& timer) {
    if (timer.heap_ != this) return;
    remove_at(timer.index_);
}

std::size_t TimerHeap::fire_expired(Millis now) {
    std::size_t fired = 0;
    while (!heap_.empty() && heap_.front()->deadline_ <= now) {
        Timer* timer = heap_.front();
        remove_at(0);
        ++fired;
        timer->on_timer();  // may re-arm itself or destroy its owner; `timer` not used after
    }
    return fired;
}

void TimerHeap::remove_at(std::size_t index) {
    assert(index < heap_.size());
    Timer* removed = heap_[index];
    removed->heap_ = nullptr;
    Timer* last = heap_.back();
    heap_.pop_back();
    if (index == heap_.size()) return;
    place(index, last);
    if (index > 0 && last->deadline_ < heap_[(index - 1) / 2]->deadline_) sift_up(index);
    else sift_down(index);
}

void TimerHeap::place(std::size_t index, Timer* timer) {
    heap_[index] = timer;
    timer->index_ = index;
}

void TimerHeap::sift_up(std::size_t index) {
    Timer* timer = heap_[index];
    while (index > 0) {
        const std::size_t parent = (index - 1) / 2;
        if (heap_[parent]->deadline_ <= timer->deadline_) break;
        place(index, heap_[parent]);
        index = parent;
    }
    place(index, timer);
}

void TimerHeap::sift_down(std::size_t index) {
    Timer* timer = heap_[index];
    const std::size_t count = heap_.size();
    for (;;) {
        std::size_t child = 2 * index + 1;
        if (child >= count) break;
        if (child + 1 < count && heap_[child + 1]->deadline_ < heap_[child]->deadline_) ++child;
        if (timer->deadline_ <= heap_[child]->deadline_) break;
        place(index, heap_[child]);
        index = child;
    }
    place(index, timer);
}

}  // namespace passgate::reactor
