using FlexKv.Core.Errors;

namespace FlexKv.Core.Planning;

/// <summary>
/// Replays requests of the Mooncake/FAST'25 trace format (each hash id stands for a block of
/// <c>blockTokens</c> tokens) without a token buffer from the caller: hash id h becomes the
/// distinct token ids <c>h * blockTokens + k</c> (k = 0 .. blockTokens - 1), so requests that
/// share leading hash ids share token prefixes exactly, and the prompt is cut to its input
/// length; output token j of the trace is <c>-1 - (firstOutputId + j)</c>, counted on across
/// requests and calls, so no prompt and no other output ever holds it.
/// </summary>
internal sealed class MooncakeReplay
{
    private long[] _sequence = new long[1 << 16];

    /// <summary>
    /// Replays requests into <paramref name="planner"/>: request i has the next
    /// <c>hashCounts[i]</c> of <paramref name="hashIds"/>, <c>inputLengths[i]</c> prompt tokens and
    /// <c>outputLengths[i]</c> output tokens; its outputs are numbered from
    /// <paramref name="firstOutputId"/> on. Writes per request what <see cref="TierPlanner.Replay"/> does.
    /// </summary>
    public void Replay(TierPlanner planner, ReadOnlySpan<long> hashIds, ReadOnlySpan<long> hashCounts,
        ReadOnlySpan<long> inputLengths, ReadOnlySpan<long> outputLengths, int blockTokens, long firstOutputId,
        Span<int> cpuHits, Span<int> ssdHits, Span<int> notLoaded)
    {
        int n = hashCounts.Length;
        Validate(hashIds, hashCounts, inputLengths, outputLengths, blockTokens, firstOutputId);
        if (!(cpuHits.IsEmpty || cpuHits.Length >= n) || !(ssdHits.IsEmpty || ssdHits.Length >= n) || !(notLoaded.IsEmpty || notLoaded.Length >= n))
            throw new FlexKvException(FlexKvStatus.InvalidArgument, "each per-request output must be absent or hold one entry per request");
        int first = 0;
        long output = firstOutputId;
        for (int i = 0; i < n; i++)
        {
            int count = (int)hashCounts[i], input = (int)inputLengths[i], outLen = (int)outputLengths[i];
            int total = input + outLen;
            if (_sequence.Length < total) _sequence = new long[Math.Max(total, _sequence.Length * 2)];
            Span<long> seq = _sequence.AsSpan(0, total);
            Fill(seq[..input], hashIds.Slice(first, count), blockTokens);
            for (int j = 0; j < outLen; j++) seq[input + j] = -1 - (output + j);
            planner.ReplayOne(seq, input, out int cpu, out int ssd, out int lost);
            if (!cpuHits.IsEmpty) cpuHits[i] = cpu;
            if (!ssdHits.IsEmpty) ssdHits[i] = ssd;
            if (!notLoaded.IsEmpty) notLoaded[i] = lost;
            first += count;
            output += outLen;
        }
    }

    private static void Fill(Span<long> prompt, ReadOnlySpan<long> hashes, int blockTokens)
    {
        int t = 0;
        foreach (long h in hashes)
        {
            long start = h * blockTokens;
            for (int k = 0; k < blockTokens && t < prompt.Length; k++) prompt[t++] = start + k;
            if (t == prompt.Length) break;
        }
    }

    // Everything is checked before anything is replayed, so a rejected call changes nothing.
    private static void Validate(ReadOnlySpan<long> hashIds, ReadOnlySpan<long> hashCounts, ReadOnlySpan<long> inputLengths,
        ReadOnlySpan<long> outputLengths, int blockTokens, long firstOutputId)
    {
        int n = hashCounts.Length;
        if (inputLengths.Length != n || outputLengths.Length != n)
            throw new FlexKvException(FlexKvStatus.InvalidArgument, "hash_counts, input_lengths and output_lengths must have the same length");
        if (blockTokens < 1) throw new FlexKvException(FlexKvStatus.InvalidArgument, $"block_tokens must be >= 1, got {blockTokens}");
        if (firstOutputId < 0) throw new FlexKvException(FlexKvStatus.InvalidArgument, $"first_output_id must be >= 0, got {firstOutputId}");
        long maxHash = (long.MaxValue - blockTokens) / blockTokens; // h * blockTokens + k stays positive
        long used = 0, outputs = firstOutputId;
        for (int i = 0; i < n; i++)
        {
            long count = hashCounts[i], input = inputLengths[i], output = outputLengths[i];
            if (count < 0 || count > hashIds.Length - used)
                throw new FlexKvException(FlexKvStatus.InvalidArgument, $"request {i}: {count} hash ids, {hashIds.Length - used} left");
            if (input < 0 || output < 0 || input > count * blockTokens || input + output > int.MaxValue)
                throw new FlexKvException(FlexKvStatus.InvalidArgument,
                    $"request {i}: input_length {input} does not fit {count} hash ids of {blockTokens} tokens, or a length is negative");
            foreach (long h in hashIds.Slice((int)used, (int)count))
                if (h < 0 || h > maxHash) throw new FlexKvException(FlexKvStatus.InvalidArgument, $"request {i}: hash id {h} out of range");
            used += count;
            outputs += output;
            if (outputs < 0) throw new FlexKvException(FlexKvStatus.InvalidArgument, "output token ids overflow");
        }
        if (used != hashIds.Length)
            throw new FlexKvException(FlexKvStatus.InvalidArgument, $"hash_counts name {used} hash ids but {hashIds.Length} were given");
    }
}
