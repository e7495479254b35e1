/*
 * flexkv.h — the C ABI of libflexkv.so, the single source of truth for its exports.
 *
 * Rules:
 *  - Every function returns an int status: 0 = FLEXKV_OK, negative = error. After an error,
 *    flexkv_last_error() returns the calling thread's message.
 *  - Handles are opaque 64-bit ids; a stale or garbage handle gives FLEXKV_ERR_INVALID_HANDLE.
 *  - Strings are UTF-8 with explicit byte lengths (no terminator needed). Arrays come with
 *    explicit lengths. Outputs go to caller-owned memory; a too-small buffer gives
 *    FLEXKV_ERR_BUFFER_TOO_SMALL and writes the size needed.
 *  - No C# exception ever crosses this boundary.
 *  - Do not call the library in a process forked after its first use (the .NET runtime's
 *    threads do not survive fork); spawn instead.
 */
#ifndef FLEXKV_H
#define FLEXKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLEXKV_ABI_VERSION 2  /* 2: flexkv_get_num_new_matched_tokens may answer FLEXKV_MATCH_PENDING */

/* *matched_tokens of flexkv_get_num_new_matched_tokens while the remote store is being asked. */
#define FLEXKV_MATCH_PENDING -1

/* Status codes. */
#define FLEXKV_OK                      0
#define FLEXKV_ERR_INVALID_ARGUMENT   -1  /* null pointer, bad length or value */
#define FLEXKV_ERR_INVALID_HANDLE     -2  /* unknown, stale or wrong-type handle */
#define FLEXKV_ERR_INVALID_CONFIG     -3  /* configuration JSON malformed or inconsistent */
#define FLEXKV_ERR_BUFFER_TOO_SMALL   -4  /* output buffer too small; the needed size was written */
#define FLEXKV_ERR_UNKNOWN_REQUEST    -5  /* request id not known to the engine */
#define FLEXKV_ERR_INVALID_STATE      -6  /* call not allowed now (e.g. request finished twice) */
#define FLEXKV_ERR_OUT_OF_MEMORY      -7  /* the cache could not be reserved */
#define FLEXKV_ERR_NOT_REGISTERED     -8  /* no KV cache registered */
#define FLEXKV_ERR_SHUT_DOWN          -9  /* the engine was shut down */
#define FLEXKV_ERR_IO                -10  /* an I/O operation failed */
#define FLEXKV_ERR_NOT_SUPPORTED     -11  /* not supported in this build or setup */
#define FLEXKV_ERR_INTERNAL          -99  /* unexpected internal error */

/* Kinds of records in flexkv_query_finished_task's entry buffer. */
#define FLEXKV_FINISHED_RECVING 1  /* the request's load ended (vLLM finished_recving) */
#define FLEXKV_FINISHED_SENDING 2  /* the request's save ended (vLLM finished_sending) */

typedef uint64_t flexkv_engine_t;
typedef uint64_t flexkv_index_t;

/*
 * One registered KV-cache layer. Block b's first span starts at base + b * block_stride; with
 * num_kv == 2 its second (V) span starts kv_stride bytes after the first. Each span is
 * span_bytes contiguous bytes. Sum over layers of num_kv * span_bytes must equal the engine's
 * block_bytes. FlashAttention (2, N, ...) and (N, 2, ...), packed (N, H, bs, 2D) and MLA (N, bs, D)
 * caches are all expressible.
 */
typedef struct flexkv_layer {
    uint64_t base;
    int64_t block_stride;
    int64_t kv_stride;
    int64_t span_bytes;
    int32_t num_kv;
    int32_t reserved; /* must be 0 */
} flexkv_layer_t;

/* Writes FLEXKV_ABI_VERSION of the loaded library to *version. */
int flexkv_abi_version(int32_t* version);

/* What this build is, as a NUL-terminated JSON object: abi_version, git_sha and build_date
 * ("unknown" when the build did not record them), instruction_set, dotnet_runtime, cpu_features. */
int flexkv_build_info(char* buffer, size_t capacity, size_t* needed);

/*
 * Copies the calling thread's last error message (NUL-terminated) into buffer.
 * *needed receives the size including the terminator; FLEXKV_ERR_BUFFER_TOO_SMALL if capacity < *needed.
 * Does not change the recorded message.
 */
int flexkv_last_error(char* buffer, size_t capacity, size_t* needed);

/* ---- Engine lifetime ------------------------------------------------------------------- */

/*
 * Creates an engine from one JSON document (keys: tokens_per_block, cpu_cache_gb or
 * num_cpu_blocks, block_bytes or num_layers/num_kv_heads/head_size/dtype/use_mla, model_name,
 * layout, tp_size, tp_rank, secret, transfer_threads, transfer_queue_capacity,
 * use_hugepage_cpu_buffer, eviction_policy, max_memory_fraction). Unknown keys are errors.
 * *engine receives the handle (0 on failure).
 */
int flexkv_engine_create(const char* config_json, size_t config_json_length, flexkv_engine_t* engine);

/* Shuts the engine down (if not yet) and releases the handle. engine == 0 is a no-op. */
int flexkv_engine_destroy(flexkv_engine_t engine);

/* Cancels pending work, joins the copy threads and frees the CPU pool; later calls give
 * FLEXKV_ERR_SHUT_DOWN until flexkv_engine_destroy. Idempotent. */
int flexkv_engine_shutdown(flexkv_engine_t engine);

/* Registers the same-process KV cache (host memory) the engine copies blocks to and from.
 * Valid device block ids are 0..num_device_blocks-1. */
int flexkv_register_kv_caches(flexkv_engine_t engine, const flexkv_layer_t* layers, size_t num_layers,
                              int32_t num_device_blocks);

/* Registers a KV cache in GPU memory of this process: layer bases are CUDA device pointers on
 * device `device`. Copies use the CUDA driver (libcuda.so.1, loaded on this call) and the CPU
 * pool is page-locked. FLEXKV_ERR_NOT_SUPPORTED without a driver or GPU. */
int flexkv_register_cuda_kv_caches(flexkv_engine_t engine, const flexkv_layer_t* layers, size_t num_layers,
                                   int32_t num_device_blocks, int32_t device);

/* Registers a KV cache in host memory of process `pid` (e.g. a vLLM CPU worker started by this
 * process): blocks move with process_vm_readv/writev. FLEXKV_ERR_NOT_SUPPORTED when the kernel
 * denies access (ptrace rules; the message names the setting). */
int flexkv_register_process_kv_caches(flexkv_engine_t engine, int32_t pid, const flexkv_layer_t* layers,
                                      size_t num_layers, int32_t num_device_blocks);

/* Registers rank `rank` of `world_size` tensor-parallel workers, each process `pid` holding its
 * shard (block_bytes / world_size bytes per block) in host memory. A block's CPU slot holds all
 * ranks' parts; *complete = 1 once every rank registered (the cache is usable from then on).
 * A rank registered again replaces its earlier registration (a restarted worker); every rank's
 * shard must have the same shape (blocks, layers, span sizes). */
int flexkv_register_rank_kv_caches(flexkv_engine_t engine, int32_t rank, int32_t world_size, int32_t pid,
                                   const flexkv_layer_t* layers, size_t num_layers, int32_t num_device_blocks,
                                   int32_t* complete);

/* What a worker process sends so the engine can map one of its CUDA KV cache tensors: the
 * CUDA IPC handle of the allocation holding it, the tensor's offset in that allocation, and the
 * GPU's PCI bus id (ordinals differ between processes; bus ids do not). */
typedef struct flexkv_cuda_ipc {
    uint8_t handle[64];
    uint64_t offset;
    char pci_bus_id[32];
} flexkv_cuda_ipc_t;

/* Worker side: describes device pointer `device_ptr` of this process for another process.
 * FLEXKV_ERR_NOT_SUPPORTED without a driver, or for memory CUDA IPC cannot share (PyTorch's
 * expandable segments, vLLM's sleep mode; the message names the setting). */
int flexkv_cuda_ipc_export(uint64_t device_ptr, flexkv_cuda_ipc_t* desc);

/* Same as flexkv_register_rank_kv_caches for a shard in the worker's GPU memory: layer i's base
 * is ignored and replaced by the mapping of handles[i] (num_layers of each). */
int flexkv_register_rank_cuda_kv_caches(flexkv_engine_t engine, int32_t rank, int32_t world_size,
                                        const flexkv_cuda_ipc_t* handles, const flexkv_layer_t* layers,
                                        size_t num_layers, int32_t num_device_blocks, int32_t* complete);

/* A worker exited: rank `rank` is missing until it registers again, and nothing is offered or
 * loaded meanwhile. FLEXKV_ERR_INVALID_ARGUMENT if the rank is not registered. */
int flexkv_deregister_rank(flexkv_engine_t engine, int32_t rank);

/* Drops every cached block; pending tasks are cancelled and still reported as finished. */
int flexkv_reset(flexkv_engine_t engine);

/* Writes the engine's counters as a NUL-terminated JSON object. */
int flexkv_stats(flexkv_engine_t engine, char* buffer, size_t capacity, size_t* needed);

/*
 * The numeric counters as int64 values, cheap enough to read every scheduler step (no JSON, no
 * allocation): writes min(capacity, *count) values and sets *count to how many there are.
 * flexkv_metrics_names says what each position is; new metrics are only ever appended.
 */
int flexkv_metrics_read(flexkv_engine_t engine, int64_t* values, size_t capacity, size_t* count);

/*
 * The snapshot's layout as a NUL-terminated JSON array of {"name", "kind", "help"} with an
 * optional "labels" object of strings. kind is "counter", "gauge" or "histogram"; a histogram is
 * entries <base>_bucket (labels include "le", cumulative), <base>_sum (microseconds for a base
 * ending in _seconds) and <base>_count. Every entry of one name has the same label keys.
 */
int flexkv_metrics_names(char* buffer, size_t capacity, size_t* needed);

/* Waits up to timeout_ms for a task to finish; *ready = 1 if something can be queried. */
int flexkv_wait(flexkv_engine_t engine, int32_t timeout_ms, int32_t* ready);

/* ---- KV events (vLLM's kv_events_config) ------------------------------------------------ */

/* Kinds of flexkv_kv_event_t (vLLM's BlockStored, BlockRemoved, AllBlocksCleared). */
#define FLEXKV_KV_EVENT_STORED  1  /* the block became readable in the tier */
#define FLEXKV_KV_EVENT_REMOVED 2  /* the tier dropped its copy (evicted, or after a failed read) */
#define FLEXKV_KV_EVENT_CLEARED 3  /* every block of every tier was forgotten (a reset) */

/* Tiers (medium) of flexkv_kv_event_t. */
#define FLEXKV_TIER_CPU    0
#define FLEXKV_TIER_SSD    1
#define FLEXKV_TIER_REMOTE 2

/* Most bytes of one block hash. */
#define FLEXKV_MAX_HASH_BYTES 32

/*
 * One KV event: a block, named by vLLM's hash of it (as given by flexkv_set_block_hashes), and
 * for a stored block its parent's hash (parent_len 0: a first block, or a parent whose hash the
 * engine never learned). A CLEARED event carries no hash.
 */
typedef struct flexkv_kv_event {
    uint8_t kind;         /* FLEXKV_KV_EVENT_* */
    uint8_t medium;       /* FLEXKV_TIER_* */
    uint8_t hash_len;
    uint8_t parent_len;
    uint8_t reserved[4];
    uint8_t hash[32];
    uint8_t parent[32];
} flexkv_kv_event_t;

/*
 * Starts recording KV events into a ring of `capacity` events (1 to 1048576); when they are not
 * taken in time the oldest are dropped (counted: kv_events_dropped). Calling again replaces the
 * ring. Blocks whose vLLM hash the engine never learned are counted (kv_events_unhashed), not recorded.
 */
int flexkv_kv_events_enable(flexkv_engine_t engine, int32_t capacity);

/*
 * vLLM's hashes of a known request's blocks [first_block, first_block + count), hash_bytes
 * (1 to 32) bytes each, back to back: the names of its blocks in KV events. first_block is at
 * most the number of blocks given so far (a block given again is overwritten); every hash of a
 * request has the same length. FLEXKV_ERR_INVALID_STATE when KV events are not enabled.
 */
int flexkv_set_block_hashes(flexkv_engine_t engine, const char* request_id, size_t request_id_len, int32_t first_block,
                            const uint8_t* hashes, size_t hash_bytes, size_t count);

/* Moves up to `capacity` of the oldest KV events into `events`; *count = how many (0 when events are off). */
int flexkv_kv_events_take(flexkv_engine_t engine, flexkv_kv_event_t* events, size_t capacity, size_t* count);

/* ---- Scheduler calls (vLLM's names) ----------------------------------------------------- */

/*
 * How many tokens beyond num_computed_tokens (vLLM's local hit, a multiple of tokens_per_block)
 * can be loaded from the cache now; full blocks of the first num_tokens tokens only. The
 * matched blocks are pinned; asking again replaces the previous answer. tokens may be NULL when
 * the engine already saw at least num_tokens tokens of this request. ns (may be NULL/0) is the
 * request's namespace (LoRA name, cache salt), used the first time a request is seen.
 * With a remote tier, *matched_tokens is FLEXKV_MATCH_PENDING while the store is asked about the
 * blocks beyond the local hit (the call never waits on it): ask again later (vLLM: return None);
 * an answer later than remote_lookup_budget_ms counts as a miss.
 */
int flexkv_get_num_new_matched_tokens(flexkv_engine_t engine, const char* request_id, size_t request_id_length,
                                      const int64_t* tokens, size_t num_tokens, int32_t num_computed_tokens,
                                      const char* ns, size_t ns_length, int32_t* matched_tokens);

/*
 * After vLLM allocated the request's blocks: block_ids are all its blocks from block 0. With
 * num_external_tokens > 0 plans the load into block_ids[num_computed/bs ...]; with 0 it drops
 * the match (or is a no-op when a load is already planned).
 */
int flexkv_update_state_after_alloc(flexkv_engine_t engine, const char* request_id, size_t request_id_length,
                                    const int32_t* block_ids, size_t num_block_ids, int32_t num_external_tokens);

/*
 * The request ended. With save != 0 plans a put of its full blocks except the last token's
 * (whose KV is never computed) that the cache lacks, from block_ids. *hold = 1 when vLLM must
 * keep the blocks until the request is reported with FLEXKV_FINISHED_SENDING. tokens may be NULL
 * when the engine already saw num_tokens tokens of this request.
 */
int flexkv_request_finished(flexkv_engine_t engine, const char* request_id, size_t request_id_length,
                            const int64_t* tokens, size_t num_tokens, const int32_t* block_ids, size_t num_block_ids,
                            int32_t save, const char* ns, size_t ns_length, int32_t* hold);

/*
 * Gives the engine a known request's newer tokens without its whole sequence: tokens holds
 * tokens [first_token, first_token + num_tokens) of the request, and first_token must be where
 * the full blocks it has seen end (tokens seen so far, rounded down to tokens_per_block: the
 * tokens of a partial block come again). Later calls may then pass tokens = NULL.
 */
int flexkv_extend_tokens(flexkv_engine_t engine, const char* request_id, size_t request_id_length,
                         const int64_t* tokens, size_t num_tokens, int32_t first_token);

/* Preemption: drops the request's match and cancels its tasks; returns once none of its copies
 * runs any more (the blocks may be reused). The request stays known. */
int flexkv_cancel_request(flexkv_engine_t engine, const char* request_id, size_t request_id_length);

/* Launches every planned load and save; *launched = number of tasks. Nothing planned is not an error. */
int flexkv_launch_tasks(flexkv_engine_t engine, int32_t* launched);

/*
 * Hands out finished requests once each. entries receives records
 * [uint8 kind][uint32 little-endian length][length bytes of UTF-8 request id], *entries_length
 * their total size; failed_blocks receives the device block ids whose loads failed (vLLM must
 * recompute them), *failed_count their number. If either buffer is too small, nothing is taken,
 * the sizes needed are written and FLEXKV_ERR_BUFFER_TOO_SMALL is returned.
 */
int flexkv_query_finished_task(flexkv_engine_t engine, uint8_t* entries, size_t entries_capacity,
                               size_t* entries_length, int32_t* failed_blocks, size_t failed_capacity,
                               size_t* failed_count);

/* ---- Control-plane prefix index (no bytes; trace replay, capacity planning) ------------- */

/* Creates an index of capacity_blocks blocks of tokens_per_block tokens with LRU leaf eviction. */
int flexkv_index_create(int32_t tokens_per_block, int64_t capacity_blocks, flexkv_index_t* index);

/* Releases an index. index == 0 is a no-op. */
int flexkv_index_destroy(flexkv_index_t index);

/* Cached leading tokens of sequence `sequence` (caller-chosen id; its tokens may only grow, so
 * blocks hashed before are not hashed again). */
int flexkv_index_match(flexkv_index_t index, int64_t sequence, const int64_t* tokens, size_t num_tokens,
                       int32_t* matched_tokens);

/* Stores the full blocks of tokens not cached yet (evicting LRU leaves) and ends the sequence;
 * *stored_blocks = blocks stored. */
int flexkv_index_insert(flexkv_index_t index, int64_t sequence, const int64_t* tokens, size_t num_tokens,
                        int32_t* stored_blocks);

/* Replays a trace in one call (no per-call overhead): sequence i is the next total_lengths[i]
 * tokens of `tokens`; its first prompt_lengths[i] tokens are matched (result in
 * matched_tokens[i]), then all of it is inserted. *total_matched = sum of matches. */
int flexkv_index_replay(flexkv_index_t index, const int64_t* tokens, size_t num_tokens, const int64_t* prompt_lengths,
                        const int64_t* total_lengths, size_t num_sequences, int32_t* matched_tokens,
                        int64_t* total_matched);

/* Blocks held and blocks evicted so far. */
int flexkv_index_info(flexkv_index_t index, int64_t* blocks, int64_t* evictions);

/* ---- Tiered capacity planner (control plane of the CPU and SSD tiers, no bytes) --------- */

typedef uint64_t flexkv_planner_t;

/*
 * Creates a planner: the engine's block index with cpu_blocks CPU slots and ssd_blocks SSD slots
 * (0: no SSD tier), driven as the engine is when vLLM runs one request at a time with instant
 * transfers: match the prompt (CPU, then SSD blocks staged through CPU slots), load, save the
 * full blocks of all tokens but the last with write-through to SSD, each tier evicting its LRU leaves.
 */
int flexkv_plan_create(int32_t tokens_per_block, int64_t cpu_blocks, int64_t ssd_blocks, flexkv_planner_t* planner);

/* Releases a planner. planner == 0 is a no-op. */
int flexkv_plan_destroy(flexkv_planner_t planner);

/*
 * Replays requests packed in `tokens` (request i: the next total_lengths[i] tokens, of which the
 * first prompt_lengths[i] are its prompt); later calls continue the same cache. Per request, when
 * not NULL: blocks loaded from CPU (cpu_blocks[i]), from SSD (ssd_blocks[i]) and matched blocks no
 * CPU slot could be freed for (not_loaded[i]; the engine reports them as failed loads).
 */
int flexkv_plan_replay(flexkv_planner_t planner, const int64_t* tokens, size_t num_tokens, const int64_t* prompt_lengths,
                       const int64_t* total_lengths, size_t num_sequences, int32_t* cpu_blocks, int32_t* ssd_blocks,
                       int32_t* not_loaded);

/*
 * Replays Mooncake/FAST'25 requests without a token buffer: request i has the next
 * hash_counts[i] of hash_ids, input_lengths[i] prompt and output_lengths[i] output tokens. Hash id
 * h stands for the tokens h * block_tokens + k (k < block_tokens), so shared leading hash ids are
 * shared prefixes; the prompt is cut to its input length; output token j is -1 - (first_output_id
 * + j), numbered on across requests (pass the outputs replayed so far), so nothing else holds it.
 * Outputs as flexkv_plan_replay. Nothing is replayed when an argument is refused.
 */
int flexkv_plan_replay_mooncake(flexkv_planner_t planner, const int64_t* hash_ids, size_t num_hash_ids,
                                const int64_t* hash_counts, const int64_t* input_lengths, const int64_t* output_lengths,
                                size_t num_requests, int32_t block_tokens, int64_t first_output_id, int32_t* cpu_blocks,
                                int32_t* ssd_blocks, int32_t* not_loaded);

/* The planner's totals (requests, tokens, hits and writes per tier, evictions, levels) as a
 * NUL-terminated JSON object. */
int flexkv_plan_stats(flexkv_planner_t planner, char* buffer, size_t capacity, size_t* needed);

/* ---- Read-only views for operators ------------------------------------------------------ */

/* What an engine created from config_json (flexkv_engine_create's document) would reserve, as a
 * NUL-terminated JSON object (block bytes, CPU blocks and pool bytes, SSD slots, redacted remote
 * URL, fingerprint), worked out as the engine does without reserving anything. */
int flexkv_config_summary(const char* config_json, size_t config_json_length, char* buffer, size_t capacity,
                          size_t* needed);

typedef uint64_t flexkv_ssd_t;

/*
 * Opens an SSD cache directory for inspection (dirs: ';'-separated, as ssd_cache_dir) without
 * changing it or taking it over: the journal is copied and replayed by the engine's own reader.
 * With config_json (may be NULL/0) the summary also says whether an engine with that
 * configuration would reuse the cache. Works while an engine runs (the journal as it was now).
 */
int flexkv_ssd_open(const char* dirs, size_t dirs_length, const char* config_json, size_t config_json_length,
                    flexkv_ssd_t* inspector);

/* The cache's files, journal state, geometry and blocks as a NUL-terminated JSON object. */
int flexkv_ssd_summary(flexkv_ssd_t inspector, char* buffer, size_t capacity, size_t* needed);

/* Re-reads the blocks of slots [first_slot, first_slot + count) and checks them as a load would:
 * the first bad_capacity failing slots go to bad_slots, *bad_count = how many failed,
 * *checked_blocks = how many were read. Read only. */
int flexkv_ssd_verify(flexkv_ssd_t inspector, int32_t first_slot, int32_t count, int32_t* bad_slots,
                      size_t bad_capacity, int32_t* bad_count, int32_t* checked_blocks);

/* Journals the given slots as empty so no engine serves them again (their unreachable children
 * are dropped at the next engine start). The one call that writes: it takes the directories as an
 * engine does, so FLEXKV_ERR_INVALID_STATE while an engine uses them. *removed = slots that held a block. */
int flexkv_ssd_repair(flexkv_ssd_t inspector, const int32_t* slots, size_t count, int32_t* removed);

/* Releases an inspector (its private copy of the journal is deleted). inspector == 0 is a no-op. */
int flexkv_ssd_close(flexkv_ssd_t inspector);

#ifdef __cplusplus
}
#endif

#endif /* FLEXKV_H */
