// detflow/service/outbox.h — a durable, bounded, on-disk queue of messages waiting for a
// broker's acknowledgement (the MQTT publisher's outbox). No network code here.
//
// What it guarantees:
//   - append() writes the record to disk (write(2) into the page cache, so it survives the
//     process being killed; fsync policy decides what survives a power loss) before it
//     returns, and never waits on anything but that write: the writer is the pipeline's sink
//     thread.
//   - Records are handed out in append order (take()); a record leaves the queue only when
//     acknowledge() says the broker has it. A record handed out but never acknowledged (the
//     connection dropped) goes back to the queue with requeue_in_flight(), so delivery is at
//     least once: a consumer may see a record twice, always with the same event_id.
//   - Bounded: the records not yet acknowledged never exceed max_bytes (their size on disk).
//     When an append would exceed it, the OLDEST records are dropped and counted
//     (OutboxCounters::dropped); append never blocks and never fails for lack of room. A
//     single record larger than max_bytes is itself dropped and counted.
//   - Crash safe: each record is length-prefixed and CRC-32 checksummed. On open, the queue
//     is read back from disk; a torn record (the last write cut short by a kill or a power
//     loss) or a damaged one ends its segment: it and what follows in that segment are
//     dropped (counted in OutboxCounters::corrupt) and the segment is truncated there, so
//     the rest of the queue is never affected. Records acknowledged before the crash are
//     not handed out again, except the last few whose acknowledgement had not reached the
//     disk (at least once).
//
// On disk, in `directory` (created when missing, parent must exist):
//   NNNNNNNNNNNNNNNNNNNN.seg  append-only segments, named by the sequence of their first
//                             record; a new one starts when the current one passes
//                             segment_bytes; a segment whose records are all acknowledged
//                             or dropped is deleted (that is the compaction).
//   head                      the highest sequence acknowledged or dropped (everything at or
//                             below it is done), in two alternating checksummed slots so a
//                             torn write of one slot leaves the other.
// Record layout (little-endian): u32 magic "DFOB", u32 body length, u32 CRC-32 of the body,
// then the body: u64 sequence, u8 qos, u8 retained, u16 topic length, u16 event_id length,
// topic, event_id, payload (the rest).
// Disk use is at most max_bytes plus one segment (the current one may hold acknowledged
// records until it is full).
//
// Thread-safety: every member may be called from any thread; one mutex guards the state.
// The expected use is one writer thread (append) and one publisher thread (take,
// acknowledge, requeue_in_flight, sync); acknowledge() may come from the MQTT library's
// callback thread. sync() does its fdatasync outside the mutex, so an `interval` sync never
// holds up append().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace detflow::service {

// When appended records are forced to stable storage (fdatasync).
enum class FsyncPolicy {
  always,    // after every append, before it returns (survives power loss; slowest)
  interval,  // by sync(), which the publisher calls every fsync_interval (loses at most that much)
  never,     // left to the kernel (survives a process kill, not a power loss)
};
// "always", "interval", "never".
const char* to_string(FsyncPolicy policy);
// Parses "always" | "interval" | "never"; throws detflow::Error naming the text otherwise.
FsyncPolicy parse_fsync_policy(const std::string& text);

struct OutboxSettings {
  std::filesystem::path directory;        // created when missing
  std::uint64_t max_bytes = 64ull << 20;  // bound on unacknowledged records, bytes on disk
  std::uint64_t segment_bytes = 0;        // 0: max_bytes / 8, within 64 KiB .. 8 MiB
  FsyncPolicy fsync = FsyncPolicy::interval;
  std::chrono::milliseconds fsync_interval{1000};  // FsyncPolicy::interval: how often sync() is due
};

// What a publisher sends: the topic, the bytes, and how.
struct OutboxMessage {
  std::string event_id;  // what consumers drop duplicates by; may be empty
  std::string topic;
  std::string payload;
  int qos = 1;  // 0, 1 or 2
  bool retained = false;
};

struct OutboxRecord {
  std::uint64_t sequence = 0;  // from 1, increasing in append order, unique within the directory
  OutboxMessage message;
};

struct OutboxCounters {
  std::int64_t appended = 0;        // append() calls since open (dropped ones included)
  std::int64_t acknowledged = 0;    // acknowledge() that removed a record
  std::int64_t dropped = 0;         // oldest records pushed out by a full queue (events_dropped)
  std::int64_t corrupt = 0;         // records found damaged or torn on open, and dropped
  std::int64_t recovered = 0;       // records found waiting on disk at open
  std::int64_t pending = 0;         // records not yet acknowledged (in flight included)
  std::int64_t in_flight = 0;       // handed out by take(), not yet acknowledged or requeued
  std::uint64_t pending_bytes = 0;  // their size on disk
  std::uint64_t max_bytes = 0;
};

class Outbox {
 public:
  // Opens (creating `directory` when missing) and reads back what a previous run left:
  // every record above the persisted head is pending again, in order. Throws detflow::Error
  // naming the directory when it cannot be created, read or written, or when settings are
  // out of range (max_bytes below 4 KiB).
  explicit Outbox(OutboxSettings settings);
  ~Outbox();  // syncs (whatever the policy, a clean close leaves everything on disk)
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Writes the record and returns its sequence. Drops the oldest records first when the
  // queue would exceed max_bytes. Throws detflow::Error only when the disk write fails
  // (disk full, I/O error): the record is then not queued.
  std::uint64_t append(const OutboxMessage& message);

  // Up to `max_records` pending records not yet handed out, oldest first, now in flight.
  // Read back from disk (the page cache, normally).
  std::vector<OutboxRecord> take(std::size_t max_records);
  // Waits until a record can be taken while fewer than `max_in_flight` are in flight, or
  // `timeout` passes, or wake() is called; true when one can be taken within that bound.
  bool wait_for_records(std::chrono::milliseconds timeout, std::size_t max_in_flight = SIZE_MAX);
  // Makes wait_for_records() return now (shutdown, or other work for the waiting thread).
  void wake();

  // The broker has the record: it leaves the queue (once everything before it has too, the
  // head moves on, is persisted, and fully done segments are deleted). Unknown, already
  // acknowledged or dropped sequences are ignored.
  void acknowledge(std::uint64_t sequence);
  // Everything in flight becomes pending again, to be handed out by take() in order (after
  // a lost connection: those deliveries may never be confirmed).
  void requeue_in_flight();

  // Forces appended records and the head to stable storage now. Cheap when nothing changed.
  void sync();
  // FsyncPolicy::interval: sync() when fsync_interval has passed since the last one.
  void sync_if_due();

  OutboxCounters counters() const;
  const OutboxSettings& settings() const { return settings_; }

 private:
  struct Segment;
  struct Entry;
  void recover();
  void open_new_segment(std::uint64_t first_sequence);
  void drop_oldest_until_fits(std::uint64_t incoming_bytes);
  void advance_head();
  void persist_head();
  void delete_done_segments();

  OutboxSettings settings_;
  mutable std::mutex mutex_;
  std::condition_variable records_ready_;
  bool woken_ = false;
  std::deque<std::shared_ptr<Segment>> segments_;  // oldest first; back() is appended to
  std::deque<Entry> entries_;                      // pending records, sequence order, contiguous
  std::uint64_t next_sequence_ = 1;
  std::uint64_t head_ = 0;  // everything <= head_ is acknowledged or dropped
  std::uint64_t next_to_take_ = 1;
  std::uint64_t persisted_head_ = 0;
  bool head_synced_ = true;
  int head_descriptor_ = -1;
  unsigned head_slot_ = 0;
  std::uint64_t pending_bytes_ = 0;
  std::int64_t in_flight_ = 0;
  OutboxCounters counters_;
  std::chrono::steady_clock::time_point last_sync_;
};

// Records every Outbox of this process dropped since it started (pushed out of a full queue,
// or larger than a whole outbox): the same events as OutboxCounters::dropped, summed over
// outboxes. /metrics exports it as detflow_events_dropped_total. Thread-safe.
std::int64_t outbox_records_dropped_total();

// CRC-32 (IEEE 802.3, as zlib's crc32) of `size` bytes, continuing from `crc` (0 to start).
std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0);

}  // namespace detflow::service
