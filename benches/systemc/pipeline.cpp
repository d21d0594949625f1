// The BENCH.md "pipeline" kernel benchmark in SystemC, for benches/compare-systemc.sh:
//
//   source -> F0 -> S0 -> F1 -> S1 -> F2 -> S2 -> F3 -> S3 -> F4 -> S4 -> F5 -> sink
//
// Six sc_fifo<Tx> of depth 4 (a write into a full FIFO blocks until a read frees a slot and
// completes at that same simulated time; reads likewise). The source writes tx_k for
// k = 0..T-1, waiting 1 ns after each write but the last; stage i loops {read; wait (i+1) ns;
// write}, holding the transaction while it serves and while its write is blocked; the sink
// always reads, checks ids arrive in order, XORs the payloads and records the time of the
// last arrival. Every correct kernel gives sim_end_ns = 5T + 10 and, for T >= 41,
// source_last_put_ns = 5T - 115. Prints one line in the format of `stasim bench pipeline`:
//   RESULT framework=systemc T=.. sim_end_ns=.. source_last_put_ns=.. received=.. ok=0|1
//          wall_s=.. stage_events_per_s=..      (stage events: 5 per transaction)
// Build: benches/systemc/build.sh OUT; run: OUT [T]   (default T = 1000000).
#include <systemc>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ostream>

namespace {

constexpr int kStages = 5;
constexpr int kDepth = 4;
constexpr std::uint64_t kMask = 0xA5A5A5A5A5A5A5A5ULL;

struct Tx {
  std::uint64_t id = 0;
  std::uint64_t payload = 0;
};

// sc_fifo needs to print its contents on request.
std::ostream& operator<<(std::ostream& os, const Tx& t) {
  return os << "Tx{" << t.id << ", " << t.payload << "}";
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(sc_core::sc_time_stamp().value() /
                                    sc_core::sc_time(1, sc_core::SC_NS).value());
}

SC_MODULE(Source) {
  sc_core::sc_fifo_out<Tx> out;
  std::uint64_t count = 0;
  std::uint64_t last_put_ns = 0;

  SC_CTOR(Source) { SC_THREAD(run); }

  void run() {
    for (std::uint64_t k = 0; k < count; ++k) {
      out.write(Tx{k, k ^ kMask});
      if (k + 1 < count) {
        wait(1, sc_core::SC_NS);
      } else {
        last_put_ns = now_ns();  // the write of tx_{T-1} has completed: it is in F0
      }
    }
  }
};

SC_MODULE(Stage) {
  sc_core::sc_fifo_in<Tx> in;
  sc_core::sc_fifo_out<Tx> out;
  unsigned service_ns = 1;

  SC_CTOR(Stage) { SC_THREAD(run); }

  void run() {
    for (;;) {
      Tx x = in.read();
      wait(service_ns, sc_core::SC_NS);
      out.write(x);
    }
  }
};

SC_MODULE(Sink) {
  sc_core::sc_fifo_in<Tx> in;
  std::uint64_t received = 0;
  std::uint64_t payload_xor = 0;
  std::uint64_t last_ns = 0;
  bool in_order = true;

  SC_CTOR(Sink) { SC_THREAD(run); }

  void run() {
    for (;;) {
      Tx x = in.read();
      in_order = in_order && x.id == received;
      payload_xor ^= x.payload;
      ++received;
      last_ns = now_ns();
    }
  }
};

}  // namespace

int sc_main(int argc, char* argv[]) {
  const std::uint64_t T = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  if (T == 0) {
    std::fprintf(stderr, "usage: %s [T >= 1]\n", argv[0]);
    return 2;
  }
  sc_core::sc_report_handler::set_actions("/IEEE_Std_1666/deprecated", sc_core::SC_DO_NOTHING);

  sc_core::sc_fifo<Tx>* fifos[kStages + 1];
  for (int i = 0; i <= kStages; ++i) {
    fifos[i] = new sc_core::sc_fifo<Tx>(sc_core::sc_gen_unique_name("F"), kDepth);
  }
  Source source("source");
  source.count = T;
  source.out(*fifos[0]);
  Stage* stages[kStages];
  for (int i = 0; i < kStages; ++i) {
    stages[i] = new Stage(sc_core::sc_gen_unique_name("S"));
    stages[i]->service_ns = static_cast<unsigned>(i + 1);
    stages[i]->in(*fifos[i]);
    stages[i]->out(*fifos[i + 1]);
  }
  Sink sink("sink");
  sink.in(*fifos[kStages]);

  const auto t0 = std::chrono::steady_clock::now();
  sc_core::sc_start();  // returns when no event is left: every thread waits on a read
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // The payloads' XOR, computed independently of the simulation.
  std::uint64_t expect_xor = 0;
  for (std::uint64_t k = 0; k < T; ++k) expect_xor ^= k ^ kMask;
  const bool times_ok =
      sink.last_ns == 5 * T + 10 && (T < 41 || source.last_put_ns == 5 * T - 115);
  const bool ok = times_ok && sink.received == T && sink.in_order &&
                  sink.payload_xor == expect_xor;
  std::printf(
      "RESULT framework=systemc T=%llu sim_end_ns=%llu source_last_put_ns=%llu received=%llu "
      "ok=%d wall_s=%.6f stage_events_per_s=%.0f\n",
      static_cast<unsigned long long>(T), static_cast<unsigned long long>(sink.last_ns),
      static_cast<unsigned long long>(source.last_put_ns),
      static_cast<unsigned long long>(sink.received), ok ? 1 : 0, wall_s,
      5.0 * static_cast<double>(T) / wall_s);
  return ok ? 0 : 1;
}
