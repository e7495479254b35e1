namespace FlexKv.Core.Tests.Index;

/// <summary>
/// The obviously-correct model of a prefix cache with unlimited capacity: block i of a sequence
/// is cached when the exact token prefix ending with it was inserted before. Keys are the prefix
/// text itself, so there are no hash collisions to reason about.
/// </summary>
internal sealed class ReferencePrefixCache(int tokensPerBlock)
{
    private readonly HashSet<string> _blocks = new();

    public int Match(IReadOnlyList<long> tokens)
    {
        int blocks = 0;
        while ((blocks + 1) * tokensPerBlock <= tokens.Count && _blocks.Contains(Key(tokens, blocks + 1))) blocks++;
        return blocks * tokensPerBlock;
    }

    public int Insert(IReadOnlyList<long> tokens)
    {
        int added = 0;
        for (int b = 1; b * tokensPerBlock <= tokens.Count; b++)
            if (_blocks.Add(Key(tokens, b))) added++;
        return added;
    }

    private string Key(IReadOnlyList<long> tokens, int blocks) => string.Join(',', tokens.Take(blocks * tokensPerBlock));
}
