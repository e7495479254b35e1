using System.Buffers.Binary;
using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;

namespace FlexKv.Core.Hashing;

/// <summary>
/// The 16-byte check stored with every block that leaves the process (SSD journal, Redis value):
/// a tag over <c>fingerprint ‖ block key ‖ bytes</c> (both numbers little-endian), so bytes are
/// accepted only for the key and the cache they were sealed for; a block copied to another key
/// or slot fails. Without the <c>secret</c> configuration key the tag is XxHash128 of that
/// input (the 128-bit number, little-endian): it catches accidents (torn, stale or misplaced bytes) but anyone can compute it. With
/// a secret it is HMAC-SHA256, truncated to 128 bits, under a key derived from the secret with
/// HKDF-SHA256: a valid tag cannot be made without the secret (docs/security.md).
/// Thread-safe without locks: each thread has its own hashing state, and sealing or verifying
/// allocates nothing after a thread's first call.
/// </summary>
internal sealed class BlockSeal : IDisposable
{
    /// <summary>Bytes of a tag.</summary>
    public const int TagBytes = 16;
    private static ReadOnlySpan<byte> KeyLabel => "flexkv block seal v1"u8;
    private readonly byte[] _fingerprint = new byte[16];
    private readonly ThreadLocal<XxHash128>? _hash;
    private readonly ThreadLocal<IncrementalHash>? _mac;

    /// <summary>A seal for the cache <paramref name="fingerprint"/>, keyed when <paramref name="secret"/> is not empty.</summary>
    public BlockSeal(UInt128 fingerprint, string? secret)
    {
        BinaryPrimitives.WriteUInt128LittleEndian(_fingerprint, fingerprint);
        if (string.IsNullOrEmpty(secret))
        {
            _hash = new ThreadLocal<XxHash128>(() => new XxHash128());
            return;
        }
        byte[] macKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(secret), 32, salt: [], info: KeyLabel.ToArray());
        _mac = new ThreadLocal<IncrementalHash>(() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, macKey), trackAllValues: true);
    }

    /// <summary>Whether tags are MACs under the secret (false: a public hash).</summary>
    public bool Keyed => _mac is not null;

    /// <summary>Writes the tag of <paramref name="block"/> under <paramref name="key"/> into <paramref name="tag"/> (16 bytes).</summary>
    public void Seal(UInt128 key, ReadOnlySpan<byte> block, Span<byte> tag)
    {
        Span<byte> k = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128LittleEndian(k, key);
        if (_mac is not null)
        {
            IncrementalHash mac = _mac.Value!;
            mac.AppendData(_fingerprint);
            mac.AppendData(k);
            mac.AppendData(block);
            Span<byte> full = stackalloc byte[32];
            mac.GetHashAndReset(full);
            full[..TagBytes].CopyTo(tag);
            return;
        }
        XxHash128 h = _hash!.Value!;
        h.Reset();
        h.Append(_fingerprint);
        h.Append(k);
        h.Append(block);
        BinaryPrimitives.WriteUInt128LittleEndian(tag, h.GetCurrentHashAsUInt128());
    }

    /// <summary>The tag as a number (read little-endian), as the SSD journal stores it.</summary>
    public UInt128 Seal(UInt128 key, ReadOnlySpan<byte> block)
    {
        Span<byte> tag = stackalloc byte[TagBytes];
        Seal(key, block, tag);
        return BinaryPrimitives.ReadUInt128LittleEndian(tag);
    }

    /// <summary>Whether <paramref name="tag"/> is the tag of <paramref name="block"/> under <paramref name="key"/> (compared in constant time).</summary>
    public bool Verify(UInt128 key, ReadOnlySpan<byte> block, ReadOnlySpan<byte> tag)
    {
        if (tag.Length != TagBytes) return false;
        Span<byte> want = stackalloc byte[TagBytes];
        Seal(key, block, want);
        return CryptographicOperations.FixedTimeEquals(want, tag);
    }

    /// <summary>Whether <paramref name="tag"/> (a number, as the SSD journal stores it) is the tag of the block under the key.</summary>
    public bool Verify(UInt128 key, ReadOnlySpan<byte> block, UInt128 tag)
    {
        Span<byte> t = stackalloc byte[TagBytes];
        BinaryPrimitives.WriteUInt128LittleEndian(t, tag);
        return Verify(key, block, t);
    }

    /// <summary>Frees the threads' MAC states (call once no thread seals any more).</summary>
    public void Dispose()
    {
        if (_mac is not null)
        {
            foreach (IncrementalHash h in _mac.Values) h.Dispose();
            _mac.Dispose();
        }
        _hash?.Dispose();
    }
}
