// The durable outbox: segments of checksummed records plus a two-slot head file. See the
// header for the guarantees; the comments here say why the code is shaped as it is.
#include "detflow/service/outbox.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "detflow/error.h"

namespace detflow::service {

namespace {

constexpr std::uint32_t record_magic = 0x424F4644;  // "DFOB" little-endian
constexpr std::uint32_t head_magic = 0x44484644;    // "DFHD"
constexpr std::size_t record_header_bytes = 12;     // magic, body length, CRC
constexpr std::size_t body_fixed_bytes = 8 + 1 + 1 + 2 + 2;
constexpr std::size_t head_slot_bytes = 24;
// A body longer than this cannot be a record of ours: a damaged length field.
constexpr std::uint32_t maximum_body_bytes = 256u << 20;

std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t index = 0; index < 256; ++index) {
    std::uint32_t value = index;
    for (int bit = 0; bit < 8; ++bit) value = (value & 1u) ? (0xEDB88320u ^ (value >> 1)) : (value >> 1);
    table[index] = value;
  }
  return table;
}

void put_u16(std::string& out, std::uint16_t value) {
  out.push_back(static_cast<char>(value & 0xFF));
  out.push_back(static_cast<char>(value >> 8));
}
void put_u32(std::string& out, std::uint32_t value) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>((value >> shift) & 0xFF));
}
void put_u64(std::string& out, std::uint64_t value) {
  for (int shift = 0; shift < 64; shift += 8) out.push_back(static_cast<char>((value >> shift) & 0xFF));
}
std::uint64_t get_le(const unsigned char* bytes, int count) {
  std::uint64_t value = 0;
  for (int index = count - 1; index >= 0; --index) value = (value << 8) | bytes[index];
  return value;
}

std::string errno_text() { return std::strerror(errno); }

std::string segment_name(std::uint64_t first_sequence) {
  std::string digits = std::to_string(first_sequence);
  return std::string(20 - std::min<std::size_t>(20, digits.size()), '0') + digits + ".seg";
}

// Writes all of `size` bytes, retrying short writes and EINTR.
bool write_all(int descriptor, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t written = ::write(descriptor, data, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += written;
    size -= static_cast<std::size_t>(written);
  }
  return true;
}

bool read_all_at(int descriptor, char* data, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    const ssize_t got = ::pread(descriptor, data, size, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (got == 0) return false;
    data += got;
    size -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return true;
}

void sync_directory(const std::filesystem::path& directory) {
  const int descriptor = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (descriptor < 0) return;
  ::fsync(descriptor);
  ::close(descriptor);
}

// Parses one record body into `record`; false when the fields do not add up.
bool decode_body(const unsigned char* body, std::size_t size, OutboxRecord& record) {
  if (size < body_fixed_bytes) return false;
  record.sequence = get_le(body, 8);
  record.message.qos = body[8];
  record.message.retained = body[9] != 0;
  const std::size_t topic_size = get_le(body + 10, 2);
  const std::size_t id_size = get_le(body + 12, 2);
  if (record.message.qos > 2 || body_fixed_bytes + topic_size + id_size > size) return false;
  const char* text = reinterpret_cast<const char*>(body) + body_fixed_bytes;
  record.message.topic.assign(text, topic_size);
  record.message.event_id.assign(text + topic_size, id_size);
  record.message.payload.assign(text + topic_size + id_size, size - body_fixed_bytes - topic_size - id_size);
  return true;
}

// Drops of every outbox in this process (outbox_records_dropped_total()).
std::atomic<std::int64_t> records_dropped_in_process{0};

}  // namespace

std::int64_t outbox_records_dropped_total() { return records_dropped_in_process.load(std::memory_order_relaxed); }

std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc) {
  static const std::array<std::uint32_t, 256> table = make_crc_table();
  const auto* bytes = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t index = 0; index < size; ++index) crc = table[(crc ^ bytes[index]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

const char* to_string(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::always:
      return "always";
    case FsyncPolicy::interval:
      return "interval";
    case FsyncPolicy::never:
      return "never";
  }
  return "interval";
}

FsyncPolicy parse_fsync_policy(const std::string& text) {
  if (text == "always") return FsyncPolicy::always;
  if (text == "interval") return FsyncPolicy::interval;
  if (text == "never") return FsyncPolicy::never;
  throw Error("outbox fsync policy '" + text + "': accepted: always | interval | never");
}

// One segment file. Shared so that a reader or sync() can keep using the descriptor after
// the segment was deleted from the queue (the file stays readable until closed).
struct Outbox::Segment {
  std::filesystem::path path;
  int descriptor = -1;
  std::uint64_t first_sequence = 0;
  std::uint64_t last_sequence = 0;  // 0 while empty
  std::uint64_t size = 0;
  bool unsynced = false;
  ~Segment() {
    if (descriptor >= 0) ::close(descriptor);
  }
};

struct Outbox::Entry {
  enum class State : std::uint8_t { pending, in_flight, acknowledged };
  std::uint64_t sequence = 0;
  std::shared_ptr<Segment> segment;
  std::uint64_t offset = 0;  // of the record header in the segment
  std::uint32_t size = 0;    // header + body
  State state = State::pending;
};

Outbox::Outbox(OutboxSettings settings) : settings_(std::move(settings)) {
  if (settings_.directory.empty()) throw Error("outbox: no directory given (mqtt.outbox)");
  if (settings_.max_bytes < 4096) {
    throw Error("outbox " + settings_.directory.string() + ": max_bytes " + std::to_string(settings_.max_bytes) +
                " is too small; accepted: at least 4096");
  }
  if (settings_.segment_bytes == 0) {
    settings_.segment_bytes = std::clamp<std::uint64_t>(settings_.max_bytes / 8, 64u << 10, 8u << 20);
  }
  std::error_code error;
  std::filesystem::create_directories(settings_.directory, error);
  if (error || !std::filesystem::is_directory(settings_.directory)) {
    throw Error("outbox " + settings_.directory.string() +
                ": cannot create the directory: " + (error ? error.message() : std::string("not a directory")));
  }
  counters_.max_bytes = settings_.max_bytes;
  recover();
  last_sync_ = std::chrono::steady_clock::now();
}

Outbox::~Outbox() {
  sync();
  if (head_descriptor_ >= 0) ::close(head_descriptor_);
}

void Outbox::recover() {
  // The head: the valid slot with the highest sequence wins; the next write goes to the other.
  const auto head_path = settings_.directory / "head";
  head_descriptor_ = ::open(head_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (head_descriptor_ < 0) {
    throw Error("outbox " + settings_.directory.string() + ": cannot open " + head_path.string() + ": " + errno_text());
  }
  std::array<unsigned char, 2 * head_slot_bytes> slots{};
  const ssize_t got = ::pread(head_descriptor_, slots.data(), slots.size(), 0);
  for (unsigned slot = 0; slot < 2 && got > 0; ++slot) {
    if (static_cast<std::size_t>(got) < (slot + 1) * head_slot_bytes) break;
    const unsigned char* bytes = slots.data() + slot * head_slot_bytes;
    if (get_le(bytes, 4) != head_magic) continue;
    if (crc32(bytes + 8, 8) != get_le(bytes + 16, 4)) continue;
    const std::uint64_t sequence = get_le(bytes + 8, 8);
    if (sequence >= head_) {
      head_ = sequence;
      head_slot_ = slot ^ 1u;
    }
  }
  persisted_head_ = head_;

  std::vector<std::pair<std::uint64_t, std::filesystem::path>> files;
  for (const auto& item : std::filesystem::directory_iterator(settings_.directory)) {
    const std::string name = item.path().filename().string();
    if (name.size() != 24 || item.path().extension() != ".seg") continue;
    std::uint64_t first = 0;
    const auto parsed = std::from_chars(name.data(), name.data() + 20, first);
    if (parsed.ec != std::errc() || parsed.ptr != name.data() + 20) continue;
    files.emplace_back(first, item.path());
  }
  std::sort(files.begin(), files.end());

  std::uint64_t last_seen = 0;  // sequences only increase through the files
  std::string buffer;
  for (const auto& [first, path] : files) {
    auto segment = std::make_shared<Segment>();
    segment->path = path;
    segment->first_sequence = first;
    segment->descriptor = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (segment->descriptor < 0) {
      throw Error("outbox " + settings_.directory.string() + ": cannot open " + path.string() + ": " + errno_text());
    }
    struct stat status {};
    ::fstat(segment->descriptor, &status);
    buffer.resize(static_cast<std::size_t>(status.st_size));
    if (!buffer.empty() && !read_all_at(segment->descriptor, buffer.data(), buffer.size(), 0)) {
      throw Error("outbox " + settings_.directory.string() + ": cannot read " + path.string() + ": " + errno_text());
    }
    const auto* bytes = reinterpret_cast<const unsigned char*>(buffer.data());
    std::uint64_t offset = 0;
    OutboxRecord record;
    while (offset < buffer.size()) {
      const std::uint64_t left = buffer.size() - offset;
      bool valid = left >= record_header_bytes && get_le(bytes + offset, 4) == record_magic;
      std::uint32_t body_size = 0;
      if (valid) {
        body_size = static_cast<std::uint32_t>(get_le(bytes + offset + 4, 4));
        valid = body_size <= maximum_body_bytes && record_header_bytes + body_size <= left &&
                crc32(bytes + offset + record_header_bytes, body_size) == get_le(bytes + offset + 8, 4) &&
                decode_body(bytes + offset + record_header_bytes, body_size, record) && record.sequence > last_seen;
      }
      if (!valid) {
        // A torn or damaged record: it and whatever follows in this segment cannot be trusted
        // (the length field may be the damaged part). Truncate so later appends start clean.
        counters_.corrupt += 1;
        spdlog::warn("outbox {}: damaged or incomplete record at byte {} of {} ({} bytes dropped)",
                     settings_.directory.string(), offset, path.filename().string(), left);
        if (::ftruncate(segment->descriptor, static_cast<off_t>(offset)) != 0) {
          throw Error("outbox " + settings_.directory.string() + ": cannot truncate " + path.string() + ": " +
                      errno_text());
        }
        break;
      }
      const std::uint32_t size = static_cast<std::uint32_t>(record_header_bytes + body_size);
      if (record.sequence > head_) {
        entries_.push_back(Entry{record.sequence, segment, offset, size, Entry::State::pending});
        pending_bytes_ += size;
      }
      last_seen = record.sequence;
      segment->last_sequence = record.sequence;
      offset += size;
    }
    segment->size = offset;
    ::lseek(segment->descriptor, static_cast<off_t>(offset), SEEK_SET);
    segments_.push_back(std::move(segment));
  }
  // Sequences must be contiguous for the index arithmetic. Only a damaged middle segment
  // (bit rot, not a crash) leaves a gap; the records before the gap are then dropped as
  // damaged too, keeping the newer ones.
  for (std::size_t index = 1; index < entries_.size(); ++index) {
    if (entries_[index].sequence != entries_[index - 1].sequence + 1) {
      counters_.corrupt += static_cast<std::int64_t>(index);
      for (std::size_t dropped = 0; dropped < index; ++dropped) pending_bytes_ -= entries_[dropped].size;
      entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(index));
      index = 0;
    }
  }
  next_sequence_ = std::max(last_seen, head_) + 1;
  counters_.recovered = static_cast<std::int64_t>(entries_.size());
  drop_oldest_until_fits(0);  // the bound may have shrunk since the last run
  advance_head();
  next_to_take_ = entries_.empty() ? next_sequence_ : entries_.front().sequence;
  delete_done_segments();
}

void Outbox::open_new_segment(std::uint64_t first_sequence) {
  auto segment = std::make_shared<Segment>();
  segment->path = settings_.directory / segment_name(first_sequence);
  segment->first_sequence = first_sequence;
  segment->descriptor = ::open(segment->path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (segment->descriptor < 0) {
    throw Error("outbox " + settings_.directory.string() + ": cannot create " + segment->path.string() + ": " +
                errno_text());
  }
  // The new file's name must survive a power loss too, or its records would be unreachable.
  if (settings_.fsync != FsyncPolicy::never) sync_directory(settings_.directory);
  segments_.push_back(std::move(segment));
}

void Outbox::drop_oldest_until_fits(std::uint64_t incoming_bytes) {
  while (!entries_.empty() && pending_bytes_ + incoming_bytes > settings_.max_bytes) {
    const Entry& oldest = entries_.front();
    if (oldest.state == Entry::State::in_flight) --in_flight_;
    if (oldest.state != Entry::State::acknowledged) {
      ++counters_.dropped;
      records_dropped_in_process.fetch_add(1, std::memory_order_relaxed);
    }
    pending_bytes_ -= oldest.size;
    entries_.pop_front();
  }
}

void Outbox::advance_head() {
  while (!entries_.empty() && entries_.front().state == Entry::State::acknowledged) {
    pending_bytes_ -= entries_.front().size;
    entries_.pop_front();
  }
  const std::uint64_t head = entries_.empty() ? next_sequence_ - 1 : entries_.front().sequence - 1;
  if (head > head_) head_ = head;
  if (next_to_take_ <= head_) next_to_take_ = head_ + 1;
  if (head_ != persisted_head_) {
    persist_head();
    delete_done_segments();
  }
}

void Outbox::persist_head() {
  std::string slot;
  slot.reserve(head_slot_bytes);
  put_u32(slot, head_magic);
  put_u32(slot, 0);
  put_u64(slot, head_);
  put_u32(slot, crc32(slot.data() + 8, 8));
  put_u32(slot, 0);
  // A failed head write only means more duplicates after a crash; it is not worth failing
  // the writer for, so it is logged and retried with the next acknowledgement.
  if (::pwrite(head_descriptor_, slot.data(), slot.size(), static_cast<off_t>(head_slot_ * head_slot_bytes)) !=
      static_cast<ssize_t>(slot.size())) {
    spdlog::warn("outbox {}: cannot write the head: {}", settings_.directory.string(), errno_text());
    return;
  }
  head_slot_ ^= 1u;
  persisted_head_ = head_;
  head_synced_ = false;
  if (settings_.fsync == FsyncPolicy::always) {
    ::fdatasync(head_descriptor_);
    head_synced_ = true;
  }
}

void Outbox::delete_done_segments() {
  // The newest segment stays as the append target unless it is full (then the next append
  // opens a new one anyway).
  while (!segments_.empty()) {
    const auto& oldest = segments_.front();
    const bool newest = segments_.size() == 1;
    const bool all_done = oldest->last_sequence <= head_;  // an empty segment has last_sequence 0
    if (!all_done || (newest && oldest->size < settings_.segment_bytes)) break;
    ::unlink(oldest->path.c_str());
    segments_.pop_front();
  }
}

std::uint64_t Outbox::append(const OutboxMessage& message) {
  if (message.topic.size() > 0xFFFF || message.event_id.size() > 0xFFFF || message.qos < 0 || message.qos > 2) {
    throw Error("outbox: topic or event_id longer than 65535 bytes, or qos not 0, 1 or 2 (topic '" +
                message.topic.substr(0, 80) + "')");
  }
  const std::uint64_t body_size =
      body_fixed_bytes + message.topic.size() + message.event_id.size() + message.payload.size();
  const std::uint64_t size = record_header_bytes + body_size;

  std::unique_lock lock(mutex_);
  ++counters_.appended;
  if (size > settings_.max_bytes || body_size > maximum_body_bytes) {
    ++counters_.dropped;
    records_dropped_in_process.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("outbox {}: a {}-byte record is larger than the whole outbox ({} bytes): dropped",
                 settings_.directory.string(), size, settings_.max_bytes);
    return 0;
  }
  drop_oldest_until_fits(size);
  advance_head();
  const std::uint64_t sequence = next_sequence_;
  if (segments_.empty() || segments_.back()->size >= settings_.segment_bytes) open_new_segment(sequence);
  Segment& segment = *segments_.back();

  std::string record;
  record.reserve(size);
  put_u32(record, record_magic);
  put_u32(record, static_cast<std::uint32_t>(body_size));
  put_u32(record, 0);  // CRC, filled below
  put_u64(record, sequence);
  record.push_back(static_cast<char>(message.qos));
  record.push_back(static_cast<char>(message.retained ? 1 : 0));
  put_u16(record, static_cast<std::uint16_t>(message.topic.size()));
  put_u16(record, static_cast<std::uint16_t>(message.event_id.size()));
  record += message.topic;
  record += message.event_id;
  record += message.payload;
  const std::uint32_t crc = crc32(record.data() + record_header_bytes, body_size);
  for (int index = 0; index < 4; ++index) record[8 + index] = static_cast<char>((crc >> (8 * index)) & 0xFF);

  // One write(2) per record: a kill leaves either the whole record or a torn tail that the
  // next open detects by its length and checksum.
  if (!write_all(segment.descriptor, record.data(), record.size())) {
    const std::string reason = errno_text();
    // Cut off any partial record so the file stays a clean sequence of records.
    if (::ftruncate(segment.descriptor, static_cast<off_t>(segment.size)) == 0) {
      ::lseek(segment.descriptor, static_cast<off_t>(segment.size), SEEK_SET);
    }
    throw Error("outbox " + settings_.directory.string() + ": cannot write to " + segment.path.string() + ": " +
                reason);
  }
  if (settings_.fsync == FsyncPolicy::always) {
    ::fdatasync(segment.descriptor);
  } else {
    segment.unsynced = true;
  }
  entries_.push_back(
      Entry{sequence, segments_.back(), segment.size, static_cast<std::uint32_t>(size), Entry::State::pending});
  segment.size += size;
  segment.last_sequence = sequence;
  pending_bytes_ += size;
  ++next_sequence_;
  lock.unlock();
  records_ready_.notify_one();
  return sequence;
}

std::vector<OutboxRecord> Outbox::take(std::size_t max_records) {
  struct Location {
    std::uint64_t sequence;
    std::shared_ptr<Segment> segment;
    std::uint64_t offset;
    std::uint32_t size;
  };
  std::vector<Location> locations;
  {
    std::lock_guard lock(mutex_);
    if (entries_.empty()) return {};
    const std::uint64_t front = entries_.front().sequence;
    std::uint64_t sequence = std::max(next_to_take_, front);
    for (; sequence < front + entries_.size() && locations.size() < max_records; ++sequence) {
      Entry& entry = entries_[sequence - front];
      if (entry.state != Entry::State::pending) continue;
      entry.state = Entry::State::in_flight;
      ++in_flight_;
      locations.push_back({entry.sequence, entry.segment, entry.offset, entry.size});
    }
    next_to_take_ = sequence;
  }
  // Reading outside the lock: the shared segment keeps its descriptor valid even when the
  // record is dropped meanwhile (its later acknowledgement is then ignored).
  std::vector<OutboxRecord> records;
  records.reserve(locations.size());
  std::string buffer;
  for (const auto& location : locations) {
    buffer.resize(location.size);
    OutboxRecord record;
    const bool read = read_all_at(location.segment->descriptor, buffer.data(), buffer.size(), location.offset);
    const auto* bytes = reinterpret_cast<const unsigned char*>(buffer.data());
    if (!read || get_le(bytes, 4) != record_magic ||
        crc32(bytes + record_header_bytes, location.size - record_header_bytes) != get_le(bytes + 8, 4) ||
        !decode_body(bytes + record_header_bytes, location.size - record_header_bytes, record) ||
        record.sequence != location.sequence) {
      // The disk returned something else than what was written: count it and move on rather
      // than wedge the queue on it.
      spdlog::warn("outbox {}: record {} cannot be read back; dropped", settings_.directory.string(),
                   location.sequence);
      {
        std::lock_guard lock(mutex_);
        ++counters_.corrupt;
      }
      acknowledge(location.sequence);
      continue;
    }
    records.push_back(std::move(record));
  }
  return records;
}

bool Outbox::wait_for_records(std::chrono::milliseconds timeout, std::size_t max_in_flight) {
  std::unique_lock lock(mutex_);
  const auto takeable = [this, max_in_flight] {
    return !entries_.empty() && next_to_take_ <= entries_.back().sequence &&
           static_cast<std::size_t>(in_flight_) < max_in_flight;
  };
  records_ready_.wait_for(lock, timeout, [&] { return woken_ || takeable(); });
  woken_ = false;
  return takeable();
}

void Outbox::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  records_ready_.notify_all();
}

void Outbox::acknowledge(std::uint64_t sequence) {
  {
    std::lock_guard lock(mutex_);
    if (entries_.empty()) return;
    const std::uint64_t front = entries_.front().sequence;
    if (sequence < front || sequence >= front + entries_.size()) return;
    Entry& entry = entries_[sequence - front];
    if (entry.state == Entry::State::acknowledged) return;
    if (entry.state == Entry::State::in_flight) --in_flight_;
    entry.state = Entry::State::acknowledged;
    ++counters_.acknowledged;
    advance_head();
  }
  records_ready_.notify_all();  // a publisher waiting for room in its in-flight window
}

void Outbox::requeue_in_flight() {
  {
    std::lock_guard lock(mutex_);
    for (auto& entry : entries_) {
      if (entry.state == Entry::State::in_flight) entry.state = Entry::State::pending;
    }
    in_flight_ = 0;
    next_to_take_ = entries_.empty() ? next_sequence_ : entries_.front().sequence;
  }
  records_ready_.notify_all();
}

void Outbox::sync() {
  std::vector<std::shared_ptr<Segment>> unsynced;
  bool head = false;
  {
    std::lock_guard lock(mutex_);
    for (const auto& segment : segments_) {
      if (segment->unsynced) {
        unsynced.push_back(segment);
        segment->unsynced = false;
      }
    }
    head = !head_synced_;
    head_synced_ = true;
    last_sync_ = std::chrono::steady_clock::now();
  }
  for (const auto& segment : unsynced) ::fdatasync(segment->descriptor);
  if (head) ::fdatasync(head_descriptor_);
}

void Outbox::sync_if_due() {
  if (settings_.fsync != FsyncPolicy::interval) return;
  {
    std::lock_guard lock(mutex_);
    if (std::chrono::steady_clock::now() - last_sync_ < settings_.fsync_interval) return;
  }
  sync();
}

OutboxCounters Outbox::counters() const {
  std::lock_guard lock(mutex_);
  OutboxCounters counters = counters_;
  counters.pending = 0;
  for (const auto& entry : entries_) {
    if (entry.state != Entry::State::acknowledged) ++counters.pending;
  }
  counters.in_flight = in_flight_;
  counters.pending_bytes = pending_bytes_;
  return counters;
}

}  // namespace detflow::service
