// tablectl vocab-compress: builds the Engram tokenizer-compression map (raw token id ->
// compressed id, an int64 .npy) from a Hugging Face tokenizer.json (model/vocab_compress.h).
#include <chrono>
#include <cstdio>
#include <string>

#include "model/token_map.h"
#include "model/vocab_compress.h"
#include "tools/tablectl/cmd_common.h"
#include "tools/tablectl/commands.h"
#include "tools/tablectl/output.h"

namespace engram::tablectl {
namespace {

struct VocabOptions {
  std::string tokenizer;
  std::string out;
  bool clean_up_tokenization_spaces = false;
};

Result<VocabOptions> ParseVocabOptions(const ParsedArgs& args) {
  ENGRAM_RETURN_IF_ERROR(CheckPositionalCount(args, 1, 1, "TOKENIZER.json"));
  VocabOptions o;
  o.tokenizer = args.positional()[0];
  ENGRAM_ASSIGN_OR_RETURN(o.out, RequiredValue(args, "out", "MAP.npy"));
  if (o.out.empty()) return Status::InvalidArgument("--out is an empty path");
  o.clean_up_tokenization_spaces = args.Has("clean-up-tokenization-spaces");
  return o;
}

// Progress counts tokens, shown as the share of the tokenizer file they stand for.
Result<model::TokenMap> BuildWithProgress(const model::TokenizerVocab& vocab, const VocabOptions& o,
                                          const CommonOptions& common, uint64_t file_bytes) {
  const uint64_t raw = vocab.tokens.size();
  Progress progress("vocab-compress", common.progress,
                    raw ? static_cast<double>(file_bytes) / static_cast<double>(raw) : 0.0);
  model::VocabCompressOptions options;
  options.clean_up_tokenization_spaces = o.clean_up_tokenization_spaces;
  options.progress = progress.Callback();
  Result<model::TokenMap> map = model::BuildTokenMap(vocab, options);
  progress.Finish();
  return map;
}

Status ExecuteVocab(const VocabOptions& o, const CommonOptions& common) {
  Env* env = Env::Default();
  const auto start = std::chrono::steady_clock::now();
  ENGRAM_ASSIGN_OR_RETURN(uint64_t file_bytes, env->FileSize(o.tokenizer));
  ENGRAM_ASSIGN_OR_RETURN(model::TokenizerVocab vocab, model::ReadTokenizerJson(env, o.tokenizer));
  const uint64_t raw = vocab.tokens.size();
  ENGRAM_ASSIGN_OR_RETURN(model::TokenMap map, BuildWithProgress(vocab, o, common, file_bytes));
  ENGRAM_RETURN_IF_ERROR(map.SaveNpy(env, o.out));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t compressed = map.compressed_vocab_size();
  if (common.json) {
    PrintJson({{"command", "vocab-compress"},
               {"tokenizer", o.tokenizer},
               {"out", o.out},
               {"raw_vocab_size", map.raw_vocab_size()},
               {"compressed_vocab_size", compressed},
               {"clean_up_tokenization_spaces", o.clean_up_tokenization_spaces},
               {"seconds", seconds}});
  } else {
    std::printf("%s: %lld raw tokens -> %lld compressed ids (%.1f%%), map written to %s (%.2f s)\n",
                o.tokenizer.c_str(), static_cast<long long>(map.raw_vocab_size()),
                static_cast<long long>(compressed),
                raw ? 100.0 * static_cast<double>(compressed) / static_cast<double>(raw) : 0.0,
                o.out.c_str(), seconds);
  }
  return Status::OK();
}

}  // namespace

int RunVocabCompress(const ParsedArgs& args) {
  Result<VocabOptions> o = ParseVocabOptions(args);
  if (!o.ok()) return ReportArgumentError("vocab-compress", o.status());
  Status s = ExecuteVocab(*o, GetCommonOptions(args));
  return s.ok() ? kExitOk : ReportFailure(s);
}

}  // namespace engram::tablectl
