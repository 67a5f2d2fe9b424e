// Tokenizes a directory of text documents with a real BPE vocabulary (gpt-tokenizer's tiktoken
// encodings) for the cache benchmark's real trace (see make_real_trace.sh), and writes the
// vocabulary as a Hugging Face tokenizer.json that `tablectl vocab-compress` reads.
//
//   node tokenize.mjs --src DIR --out-dir OUT [--encoding cl100k_base|o200k_base]
//                     [--chunk 4096] [--ext .txt]
//
// Documents: every file under DIR whose name ends in --ext, in byte order of the relative path,
// read as UTF-8 and encoded whole (special-token text such as "<|endoftext|>" is encoded as
// ordinary text). Each document is cut into sequences of at most --chunk tokens (one serving
// request each: Engram hashing restarts at every sequence start).
//
// Writes into OUT:
//   tokens.npy      [B, chunk] int64: one sequence per row, padded after its end with pad_id
//   lengths.npy     [B] int64: the real tokens of each row (the rest is padding)
//   docs.json       {encoding, chunk, pad_id, pad_token, raw_vocab_size, documents, tokens,
//                    sequences, seconds, files: [{path, bytes, tokens}]}
//   tokenizer.json  model.type "BPE": model.vocab maps each token's bytes, in GPT-2's
//                   byte-to-unicode form, to its rank; model.merges rebuilt from the ranks;
//                   the encoding's special tokens as added_tokens; the ids between them that
//                   the encoding leaves unused filled with "<|reserved_ID|>" added tokens, so
//                   that ids are dense 0..N-1 as vocab-compress requires; decoder ByteLevel.
// pad_id is the encoding's <|endoftext|> (GPT-2's convention: tiktoken encodings have no pad).
import { readFileSync, readdirSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENCODINGS = {
  cl100k_base: {
    // tiktoken's split pattern for cl100k_base (informational in tokenizer.json).
    pattern:
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    params: async () => (await import('gpt-tokenizer/encodingParams/cl100k_base')).Cl100KBase,
  },
  o200k_base: {
    pattern:
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    params: async () => (await import('gpt-tokenizer/encodingParams/o200k_base')).O200KBase,
  },
};

function parseArgs(argv) {
  const opts = { encoding: 'cl100k_base', chunk: 4096, ext: '.txt' };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[i + 1];
    if (!key.startsWith('--') || value === undefined) usage(`bad argument ${key}`);
    opts[key.slice(2).replace(/-/g, '_')] = value;
    i++;
  }
  if (!opts.src || !opts.out_dir) usage('--src and --out-dir are required');
  if (!(opts.encoding in ENCODINGS)) usage(`unknown encoding ${opts.encoding}`);
  opts.chunk = Number(opts.chunk);
  if (!Number.isInteger(opts.chunk) || opts.chunk < 1) usage('--chunk must be a positive integer');
  return opts;
}

function usage(message) {
  console.error(`tokenize.mjs: ${message}`);
  console.error(
    'usage: node tokenize.mjs --src DIR --out-dir OUT [--encoding cl100k_base|o200k_base] ' +
      '[--chunk 4096] [--ext .txt]',
  );
  process.exit(2);
}

// Files under dir ending in ext, relative paths in byte order (so the order is the same on
// every machine, whatever the locale).
function listDocuments(dir, ext) {
  const out = [];
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      const isDir = entry.isDirectory() || (entry.isSymbolicLink() && statSync(p).isDirectory());
      if (isDir) walk(p);
      else if (entry.name.endsWith(ext)) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

// ---- .npy ----------------------------------------------------------------------------------

function npyHeader(shape) {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '<i8', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const header = Buffer.alloc(10);
  header.write('\x93NUMPY', 0, 'latin1');
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(dict.length, 8);
  return Buffer.concat([header, Buffer.from(dict, 'latin1')]);
}

function writeInt64Npy(path, shape, values /* BigInt64Array */) {
  writeFileSync(path, Buffer.concat([npyHeader(shape), Buffer.from(values.buffer)]));
}

// ---- tokenizer.json --------------------------------------------------------------------------

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes,
// in order, for U+0100 + n.
function byteToUnicode() {
  const table = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    table[b] = String.fromCodePoint(printable ? b : 0x100 + n++);
  }
  return table;
}

// The tiktoken file of an encoding: "BASE64 RANK" per line -> array of Buffers by rank.
function readRanks(encoding) {
  const here = dirname(fileURLToPath(import.meta.url));
  const path = join(here, 'node_modules', 'gpt-tokenizer', 'data', `${encoding}.tiktoken`);
  const ranks = [];
  for (const line of readFileSync(path, 'latin1').split('\n')) {
    if (!line) continue;
    const [b64, rank] = line.split(' ');
    ranks[Number(rank)] = Buffer.from(b64, 'base64');
  }
  for (let i = 0; i < ranks.length; i++) {
    if (!ranks[i]) throw new Error(`${path}: no token has rank ${i}`);
  }
  return ranks;
}

// The merge that makes the token of rank `rank`: BPE of its bytes with only the merges of
// lower rank, which stops at two parts (as the usual tiktoken -> tokenizers conversion does).
function mergeOf(bytes, rank, rankOf) {
  let parts = Array.from(bytes, (b) => Buffer.from([b]));
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = rankOf.get(Buffer.concat([parts[i], parts[i + 1]]).toString('latin1'));
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0 || bestRank >= rank) break;
    parts = [
      ...parts.slice(0, best),
      Buffer.concat([parts[best], parts[best + 1]]),
      ...parts.slice(best + 2),
    ];
  }
  return parts.length === 2 ? parts : null;
}

function buildTokenizerJson(encoding, ranks, specials) {
  const b2u = byteToUnicode();
  const show = (buf) => Array.from(buf, (b) => b2u[b]).join('');
  const rankOf = new Map(ranks.map((buf, r) => [buf.toString('latin1'), r]));
  const vocab = {};
  const merges = [];
  ranks.forEach((buf, r) => {
    vocab[show(buf)] = r;
    if (buf.length < 2) return;
    const m = mergeOf(buf, r, rankOf);
    if (m) merges.push(`${show(m[0])} ${show(m[1])}`);
  });
  const addedById = new Map();
  for (const [content, id] of specials) addedById.set(id, content);
  const maxId = Math.max(ranks.length - 1, ...addedById.keys());
  for (let id = ranks.length; id <= maxId; id++) {
    if (!addedById.has(id)) addedById.set(id, `<|reserved_${id}|>`);
  }
  const added_tokens = [...addedById.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([id, content]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: ENCODINGS[encoding].pattern },
          behavior: 'Isolated',
          invert: false,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

// ---- main ------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const start = Date.now();
  const { encode } = await import(`gpt-tokenizer/encoding/${opts.encoding}`);
  const specials = (await ENCODINGS[opts.encoding].params())(undefined).specialTokensEncoder;
  const padToken = '<|endoftext|>';
  const padId = specials.get(padToken);
  if (padId === undefined) throw new Error(`${opts.encoding} has no ${padToken}`);

  const files = listDocuments(opts.src, opts.ext);
  if (files.length === 0) throw new Error(`no *${opts.ext} files under ${opts.src}`);
  const sequences = [];
  const fileStats = [];
  let total = 0;
  for (const rel of files) {
    const text = readFileSync(join(opts.src, rel), 'utf8');
    const ids = encode(text, { disallowedSpecial: new Set() });
    fileStats.push({ path: rel, bytes: Buffer.byteLength(text), tokens: ids.length });
    total += ids.length;
    for (let i = 0; i < ids.length; i += opts.chunk) sequences.push(ids.slice(i, i + opts.chunk));
  }

  mkdirSync(opts.out_dir, { recursive: true });
  const tokens = new BigInt64Array(sequences.length * opts.chunk).fill(BigInt(padId));
  const lengths = new BigInt64Array(sequences.length);
  sequences.forEach((seq, b) => {
    lengths[b] = BigInt(seq.length);
    for (let t = 0; t < seq.length; t++) tokens[b * opts.chunk + t] = BigInt(seq[t]);
  });
  writeInt64Npy(join(opts.out_dir, 'tokens.npy'), [sequences.length, opts.chunk], tokens);
  writeInt64Npy(join(opts.out_dir, 'lengths.npy'), [sequences.length], lengths);

  const ranks = readRanks(opts.encoding);
  const tokenizer = buildTokenizerJson(opts.encoding, ranks, specials);
  writeFileSync(join(opts.out_dir, 'tokenizer.json'), JSON.stringify(tokenizer));

  const seconds = (Date.now() - start) / 1000;
  const summary = {
    encoding: opts.encoding,
    chunk: opts.chunk,
    pad_id: padId,
    pad_token: padToken,
    raw_vocab_size: tokenizer.added_tokens.at(-1).id + 1,
    documents: files.length,
    tokens: total,
    sequences: sequences.length,
    seconds,
    files: fileStats,
  };
  writeFileSync(join(opts.out_dir, 'docs.json'), JSON.stringify(summary, null, 1));
  console.log(
    `tokenize.mjs: ${files.length} documents, ${total} ${opts.encoding} tokens in ` +
      `${sequences.length} sequences of <= ${opts.chunk}, vocabulary ${summary.raw_vocab_size} ids ` +
      `(${tokenizer.model.merges.length} merges), ${seconds.toFixed(1)} s -> ${opts.out_dir}`,
  );
}

main().catch((e) => {
  console.error(`tokenize.mjs: ${e.stack || e}`);
  process.exit(1);
});
