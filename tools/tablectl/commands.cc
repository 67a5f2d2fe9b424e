#include "tools/tablectl/commands.h"

#include <cstdio>

#ifndef TABLECTL_VERSION
#define TABLECTL_VERSION "0.0.0-dev"
#endif

namespace engram::tablectl {
namespace {

const char kDTypes[] = "f32|f16|bf16|int8|fp8_e4m3_ue8m0";

std::vector<Command> MakeCommands() {
  return {
      {"create",
       "TABLE --rows N --dim D --dtype " + std::string(kDTypes) + " [--fill zeros|random --seed S]",
       "Create a new table filled with zeros or deterministic random rows (refuses an existing "
       "TABLE).",
       {{"rows", "N", "number of rows (>= 1)"},
        {"dim", "D", "values per row (fp8_e4m3_ue8m0: a multiple of 32)"},
        {"dtype", "T", std::string("row dtype: ") + kDTypes},
        {"fill", "zeros|random", "row contents (default zeros)"},
        {"seed", "S", "seed of --fill random (default 0); same seed, same rows"}},
       &RunCreate},
      {"import",
       "TABLE SRC.npy|SRC.safetensors[:TENSOR] [--dtype T]",
       "Create or atomically replace TABLE from a 2-D array file.",
       {{"dtype", "T",
         "row dtype (default: the source's for f32/f16/bf16; required for other sources)"}},
       &RunImport},
      {"export",
       "TABLE DST.npy [--rows A:B] [--f32]",
       "Write rows [A, B) of TABLE to a .npy file (raw rows, or floats with --f32).",
       {{"rows", "A:B", "half-open row range; either side may be omitted (default: all rows)"},
        {"f32", "", "dequantise to float32 instead of writing the stored encoding"}},
       &RunExport},
      {"info",
       "TABLE [--json]",
       "Show a table's manifest (geometry, dtype, checksums, creation) and the I/O backend.",
       {},
       &RunInfo},
      {"verify",
       "TABLE [--json] [--max-errors N]",
       "Read every page and check it against its checksum; exit 1 if anything is corrupt.",
       {{"max-errors", "N", "report at most N bad pages (default 20)"}},
       &RunVerify},
      {"get",
       "TABLE ID... [--json] [--raw]",
       "Print rows by id, dequantised to floats (or the stored bytes in hex with --raw).",
       {{"raw", "", "print the stored row bytes as hex instead of values"}},
       &RunGet},
      {"bench",
       "TABLE --trace uniform|zipf:ALPHA|TRACE.npy [--dram-cache SIZE] [--policy P] [--hot "
       "HOT.npy] "
       "[--resident] [--shared] [--prefetch [--device D] [--hbm-cache SIZE]] [--threads N] "
       "[--batch B] [--duration SEC] [--json]",
       "Measure batch lookups: rows/s, batch latency p50/p99, per-tier lookups, hits and bytes; "
       "with --prefetch, through the prefetcher (one batch ahead) and its counters.",
       {{"trace", "SPEC", "ids: uniform, zipf:ALPHA (hot rows spread over the table) or a .npy"},
        {"dram-cache", "SIZE", "DRAM cache budget over NVMe (default 1GiB; 0 = NVMe only)"},
        {"policy", "P", "DRAM cache policy (default 'default'; see `tablectl replay`)"},
        {"hot", "HOT.npy", "pin these rows (tablectl profile's output) when the table opens"},
        {"resident", "", "hold the whole table in DRAM instead of caching"},
        {"shared", "", "with --resident: one copy shared by all processes (/dev/shm)"},
        {"prefetch", "", "look up through the prefetcher, each batch prefetched one ahead"},
        {"device", "none|emulated|cuda[:N]",
         "with --prefetch: gather into this device's memory (default none: host)"},
        {"hbm-cache", "SIZE", "with --prefetch and a --device: HBM tier budget (default 0)"},
        {"io", "auto|io_uring|pread", "NVMe backend (default auto)"},
        {"threads", "N", "lookup threads (default 1)"},
        {"batch", "B", "ids per lookup call (default 4096)"},
        {"duration", "SEC", "timed seconds (default 5)"},
        {"seed", "S", "seed of generated traces (default 42)"}},
       &RunBench},
      {"replay",
       "--trace TRACE.npy --cache-rows N [--policy P[,P...]|all] [--shards S] [--hot HOT.npy] "
       "[--range BEGIN:END] [--json]",
       "Replay a row-id trace through cache policies (and Belady's OPT): hit ratio, metadata "
       "bytes per row and time, one line (or JSON object) per policy.",
       {{"trace", "TRACE.npy", "row ids (int64/uint64/int32/uint32, any shape, read flattened)"},
        {"cache-rows", "N", "cache capacity in rows, hot rows included (>= 1)"},
        {"policy", "P[,P...]|all",
         "default, lru, clock, sieve, s3fifo, wtinylfu, sampled-lfu, opt, or all (default: "
         "default)"},
        {"shards", "S", "RowCache shards (default 1; the DRAM tier uses 64); ignored by opt"},
        {"hot", "HOT.npy", "rows pinned before the replay (tablectl profile's output)"},
        {"range", "BEGIN:END", "replay accesses [BEGIN, END) only; either side may be omitted"}},
       &RunReplay},
      {"profile",
       "--trace TRACE.npy --top K --out HOT.npy [--range BEGIN:END] [--json]",
       "Write the K most frequently accessed row ids of a trace, most frequent first, as an "
       "int64 .npy (the hot rows to pin).",
       {{"trace", "TRACE.npy", "row ids (int64/uint64/int32/uint32, any shape, read flattened)"},
        {"top", "K", "how many ids to write (>= 1; fewer if the trace has fewer distinct ids)"},
        {"out", "HOT.npy", "where to write the ids (1-D int64)"},
        {"range", "BEGIN:END", "profile accesses [BEGIN, END) only; either side may be omitted"}},
       &RunProfile},
      {"engram-forward",
       "--config CFG.json --layer L --table TABLE --weights W.safetensors --ids IDS.npy "
       "--hidden H.npy --out Y.npy [--threads N] [--weights-prefix P] [--json]",
       "Run one Engram layer's forward pass (CPU, f32) over raw token ids; Y is the module "
       "output [B, T, hc_mult, hidden_size].",
       {{"config", "CFG.json", "layer configuration (the reference's field names)"},
        {"layer", "L", "layer id, one of the config's layer_ids"},
        {"table", "TABLE",
         "the layer's multi-head table: rows = sum of its heads' primes, dim = "
         "n_embed_per_ngram / n_head_per_ngram, any dtype"},
        {"weights", "W.safetensors", "layer weights under the reference's state_dict names"},
        {"weights-prefix", "P", "prefix of the weight names in W (e.g. layers.3.engram.)"},
        {"ids", "IDS.npy", "raw token ids [B, T] (integer .npy)"},
        {"hidden", "H.npy", "hidden states [B, T, hc_mult, hidden_size] (f32)"},
        {"out", "Y.npy", "where to write Y [B, T, hc_mult, hidden_size] f32"},
        {"threads", "N", "CPU threads for the gather, kernels and GEMM (default: all)"}},
       &RunEngramForward},
      {"ngram-hash",
       "--config CFG.json --layer L --ids IDS.npy --out HASHES.npy [--offsets] "
       "[--dead-mask DEAD.npy]",
       "Hash [B, T] raw token ids into an Engram layer's n-gram head hashes ([B, T, cols] int64).",
       {{"config", "CFG.json",
         "Engram config (reference field names; token_map or compressed_vocab_size)"},
        {"layer", "L", "Engram layer id (one of the config's layer_ids)"},
        {"ids", "IDS.npy", "[B, T] raw token ids (int64; int32/uint32/uint64 widened)"},
        {"out", "HASHES.npy", "output [B, T, (max_ngram_size-1)*n_head_per_ngram] int64"},
        {"offsets", "", "add each head's row offset: row ids of the layer's stacked table"},
        {"dead-mask", "DEAD.npy", "[B, T] uint8/int8, non-zero = dead token (DeepSeek-V4.1)"}},
       &RunNgramHash},
      {"vocab-compress",
       "TOKENIZER.json --out MAP.npy [--clean-up-tokenization-spaces] [--json]",
       "Build the Engram tokenizer-compression map (raw id -> compressed id, int64 .npy) from a "
       "Hugging Face tokenizer.json; prints the raw and compressed vocabulary sizes.",
       {{"out", "MAP.npy", "where to write the int64 [raw_vocab] map"},
        {"clean-up-tokenization-spaces", "",
         "apply transformers' clean_up_tokenization_spaces before normalising (default off)"}},
       &RunVocabCompress},
  };
}

}  // namespace

const std::vector<Command>& Commands() {
  static const std::vector<Command>* commands = new std::vector<Command>(MakeCommands());
  return *commands;
}

const Command* FindCommand(std::string_view name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

bool IsPlannedCommand(std::string_view name) {
  static const char* const kPlanned[] = {"serve", "upsert", "erase", "compact"};
  for (const char* p : kPlanned) {
    if (name == p) return true;
  }
  return false;
}

const std::vector<FlagSpec>& CommonFlags() {
  static const std::vector<FlagSpec>* flags = new std::vector<FlagSpec>{
      {"json", "", "print the result as one JSON document on stdout"},
      {"progress", "", "show progress on stderr even when it is not a terminal (plain lines)"},
      {"no-progress", "", "never show progress"},
      {"help", "", "show this help"},
  };
  return *flags;
}

const char* ToolVersion() { return TABLECTL_VERSION; }

void PrintOverview() {
  std::printf("tablectl %s: build, import, inspect and verify engram-store tables.\n\n",
              ToolVersion());
  std::printf("usage: tablectl COMMAND ARGS [--json] [--progress]\n\ncommands:\n");
  for (const Command& c : Commands()) {
    std::printf("  %-14s %s\n                 %s\n", c.name.c_str(), c.synopsis.c_str(),
                c.summary.c_str());
  }
  std::printf(
      "\nRun 'tablectl help COMMAND' for a command's flags, 'tablectl --version' for the "
      "version.\nErrors: one line on stderr, exit 2 for a bad command line, 1 for a failure.\n");
}

void PrintCommandHelp(const Command& command) {
  std::printf("usage: tablectl %s %s\n\n%s\n\nflags:\n", command.name.c_str(),
              command.synopsis.c_str(), command.summary.c_str());
  auto print_flags = [](const std::vector<FlagSpec>& flags) {
    for (const FlagSpec& f : flags) {
      const std::string left = "--" + f.name + (f.value_name.empty() ? "" : " " + f.value_name);
      std::printf("  %-22s %s\n", left.c_str(), f.help.c_str());
    }
  };
  print_flags(command.flags);
  print_flags(CommonFlags());
}

}  // namespace engram::tablectl
