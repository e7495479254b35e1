namespace FlexKv.Core.Tests.Index;

/// <summary>
/// A deterministic multi-turn chat trace: conversations share a few system prompts, turns of
/// different conversations interleave, some turns are regenerated (same prompt, new answer) and
/// some requests are aborted after the match. Each step is a match and usually an insert.
/// </summary>
internal static class ChatWorkload
{
    public sealed record Step(long Sequence, long[] Prompt, long[]? Finished);

    public static IEnumerable<Step> Generate(int seed, int conversations = 12, int turns = 5)
    {
        var rng = new Random(seed);
        long[] Text(int min, int max)
        {
            var t = new long[rng.Next(min, max + 1)];
            for (int i = 0; i < t.Length; i++) t[i] = rng.Next(0, 50); // small vocabulary: many partial collisions
            return t;
        }

        long[][] systems = [Text(20, 40), Text(20, 40), Text(9, 9)];
        var histories = Enumerable.Range(0, conversations).Select(c => new List<long>(systems[c % systems.Length])).ToArray();
        long sequence = 0;
        for (int turn = 0; turn < turns; turn++)
        {
            foreach (int c in Enumerable.Range(0, conversations).OrderBy(_ => rng.Next()))
            {
                List<long> h = histories[c];
                h.AddRange(Text(1, 30));
                long[] prompt = [.. h];
                if (rng.Next(8) == 0)
                {
                    yield return new Step(sequence++, prompt, null); // aborted after the match
                    continue;
                }
                if (rng.Next(6) == 0)
                    yield return new Step(sequence++, prompt, [.. prompt, .. Text(1, 20)]); // regenerated answer
                long[] answer = Text(1, 20);
                h.AddRange(answer);
                yield return new Step(sequence++, prompt, [.. h]);
            }
        }
    }
}
