using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace FlexKv.Core.Hashing;

/// <summary>
/// Chained 128-bit block keys: <c>key_i = XxHash128(key_{i-1} ‖ tokens of block i)</c>, tokens as
/// little-endian int64, <c>key_{-1}</c> = the namespace seed. Equal prefixes give equal keys.
/// </summary>
internal sealed class BlockHasher
{
    private const int KeyBytes = 16;
    private readonly UInt128 _rootSeed;

    /// <summary>Creates a hasher for blocks of <paramref name="tokensPerBlock"/> tokens under a fingerprint.</summary>
    public BlockHasher(int tokensPerBlock, UInt128 fingerprint)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(tokensPerBlock, 1);
        TokensPerBlock = tokensPerBlock;
        _rootSeed = fingerprint;
    }

    /// <summary>Tokens per block.</summary>
    public int TokensPerBlock { get; }

    /// <summary>The seed for the empty namespace.</summary>
    public UInt128 RootSeed => _rootSeed;

    /// <summary>
    /// The seed (<c>key_{-1}</c>) of a namespace: LoRA name, cache salt, user namespace, joined
    /// by the caller. The empty namespace is the fingerprint itself.
    /// </summary>
    public UInt128 SeedFor(ReadOnlySpan<byte> utf8Namespace)
    {
        if (utf8Namespace.IsEmpty) return _rootSeed;
        Span<byte> head = stackalloc byte[KeyBytes];
        WriteKey(head, _rootSeed);
        var h = new XxHash128();
        h.Append(head);
        h.Append(utf8Namespace);
        return h.GetCurrentHashAsUInt128();
    }

    /// <summary>The seed of a namespace given as a string.</summary>
    public UInt128 SeedFor(string ns) => SeedFor(Encoding.UTF8.GetBytes(ns));

    /// <summary>
    /// Hashes every full block of <paramref name="tokens"/> after the first <paramref name="done"/>
    /// blocks, continuing the chain from <paramref name="parent"/> (the key of block done-1, or
    /// the seed when done is 0). Writes keys into <paramref name="keys"/> at [done, blocks).
    /// </summary>
    public void HashBlocks(ReadOnlySpan<long> tokens, int done, UInt128 parent, Span<UInt128> keys)
    {
        int tpb = TokensPerBlock;
        int blocks = tokens.Length / tpb;
        Span<byte> buf = tpb <= 512 ? stackalloc byte[KeyBytes + tpb * 8] : new byte[KeyBytes + tpb * 8];
        for (int i = done; i < blocks; i++)
        {
            WriteKey(buf, parent);
            ReadOnlySpan<long> block = tokens.Slice(i * tpb, tpb);
            if (BitConverter.IsLittleEndian)
                MemoryMarshal.AsBytes(block).CopyTo(buf[KeyBytes..]);
            else
                for (int t = 0; t < tpb; t++) BinaryPrimitives.WriteInt64LittleEndian(buf[(KeyBytes + t * 8)..], block[t]);
            parent = XxHash128.HashToUInt128(buf);
            keys[i] = parent;
        }
    }

    private static void WriteKey(Span<byte> dst, UInt128 key)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dst, (ulong)key);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[8..], (ulong)(key >> 64));
    }
}
