namespace FlexKv.Core.Index;

/// <summary>Why a key left the index, as <see cref="RemovedKeys"/> remembers it.</summary>
internal enum RemovalCause : byte
{
    /// <summary>Not remembered.</summary>
    None = 0,
    /// <summary>Evicted from the last tier that held it (or the shared store lost it).</summary>
    Evicted = 1,
    /// <summary>Dropped after a failed read (checksum, I/O error).</summary>
    Dropped = 2,
}

/// <summary>
/// The keys that left the index lately and why, so a lookup that stops at a missing key can say
/// "evicted" rather than "never cached". A direct-mapped table (keys are uniform hashes: the
/// low bits pick the entry; a newer key overwrites an older one), fixed in size when created,
/// so remembering costs one store and asking one load, without allocating. Forgets everything
/// on a reset. Owned by the engine lock, like the index.
/// </summary>
internal sealed class RemovedKeys
{
    private readonly UInt128[] _keys;
    private readonly RemovalCause[] _causes;
    private readonly int _mask;

    /// <summary>A table of <paramref name="entries"/> entries (a power of two).</summary>
    public RemovedKeys(int entries)
    {
        if (entries <= 0 || (entries & (entries - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(entries), entries, "a power of two");
        _keys = new UInt128[entries];
        _causes = new RemovalCause[entries];
        _mask = entries - 1;
    }

    public void Remember(UInt128 key, RemovalCause cause)
    {
        int i = (int)(ulong)key & _mask;
        _keys[i] = key;
        _causes[i] = cause;
    }

    /// <summary>Why <paramref name="key"/> left, or <see cref="RemovalCause.None"/> when that is not remembered.</summary>
    public RemovalCause CauseOf(UInt128 key)
    {
        int i = (int)(ulong)key & _mask;
        return _keys[i] == key ? _causes[i] : RemovalCause.None;
    }

    public void Clear() => Array.Clear(_causes);
}
