using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace FlexKv.Core.Index;

/// <summary>
/// Block key → node id, for <see cref="BlockIndex"/>. Open addressing with linear probing over
/// one array of 8-byte entries: the node id and 32 bits of the key's position hash (the keys
/// stay in the node array, where a match reads them anyway). The hash bits let a probe skip
/// other keys, and a delete or a resize place entries, without reading their nodes: against a
/// <c>Dictionary&lt;UInt128, int&gt;</c> (buckets plus 48-byte entries, ~52 bytes a block) it is
/// 11-21 bytes a block at most 3/4 full (and ~11 when sized for a known count, as a restore
/// does: any length, not only powers of two), and one array to miss in instead of two. Deletion
/// shifts the following run back (no tombstones), so lookups never slow down with churn.
/// Positions come from the key mixed with a per-process random seed: keys are hashes of
/// caller-chosen tokens, and a fixed position function would let crafted prompts pile up on
/// one probe run. Not thread-safe (the engine lock).
/// </summary>
internal sealed class NodeTable
{
    private static readonly ulong s_seed = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) | 1;
    private ulong[] _slots = []; // hash << 32 | (node id + 1); 0: empty
    private int _growAt;

    public NodeTable(int capacity) => Resize(SlotsFor(capacity));

    /// <summary>Keys held.</summary>
    public int Count { get; private set; }

    /// <summary>Bytes of the slot array (for memory accounting).</summary>
    public long Bytes => (long)_slots.Length * sizeof(ulong);

    private static int SlotsFor(int keys) => (int)Math.Min(int.MaxValue, Math.Max(16L, keys + keys / 3L + 2));

    /// <summary>Makes room for <paramref name="keys"/> keys without a later resize.</summary>
    public void EnsureCapacity(int keys)
    {
        if (keys > _growAt) Rehash(SlotsFor(keys));
    }

    private void Resize(int length)
    {
        _slots = GC.AllocateUninitializedArray<ulong>(length);
        Array.Clear(_slots); // touches every page now, not on the first inserts
        _growAt = (int)(length * 3L / 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(UInt128 key) => (uint)(((ulong)key ^ (ulong)(key >> 64) ^ s_seed) * 0x9E37_79B9_7F4A_7C15UL >> 32);

    // A hash's home slot: the hash scaled to the length (any length).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Home(uint hash, int length) => (int)((ulong)hash * (uint)length >> 32);

    /// <summary>The node holding <paramref name="key"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Find(UInt128 key, BlockNode[] nodes)
    {
        ulong[] slots = _slots;
        uint hash = Hash(key);
        for (int i = Home(hash, slots.Length); ; i = i + 1 == slots.Length ? 0 : i + 1)
        {
            ulong e = slots[i];
            if (e == 0) return -1;
            if ((uint)(e >> 32) == hash)
            {
                int id = (int)(uint)e - 1;
                if (nodes[id].Key == key) return id;
            }
        }
    }

    /// <summary>Adds a key that is not present (the caller checked).</summary>
    public void Add(UInt128 key, int id)
    {
        if (Count >= _growAt) Rehash((int)Math.Min(int.MaxValue, 2L * _slots.Length));
        Place((ulong)Hash(key) << 32 | (uint)(id + 1));
        Count++;
    }

    private void Place(ulong entry)
    {
        ulong[] slots = _slots;
        int i = Home((uint)(entry >> 32), slots.Length);
        while (slots[i] != 0) i = i + 1 == slots.Length ? 0 : i + 1;
        slots[i] = entry;
    }

    private void Rehash(int length)
    {
        ulong[] old = _slots;
        Resize(length);
        foreach (ulong e in old)
            if (e != 0) Place(e);
    }

    /// <summary>Removes the entry of node <paramref name="id"/>, whose key is <paramref name="key"/>; the run after it moves back.</summary>
    public void Remove(UInt128 key, int id)
    {
        ulong[] slots = _slots;
        int n = slots.Length;
        uint hash = Hash(key);
        ulong entry = (ulong)hash << 32 | (uint)(id + 1);
        int i = Home(hash, n);
        while (slots[i] != entry)
        {
            if (slots[i] == 0) throw new InvalidOperationException($"block node {id} is not in the key table");
            i = i + 1 == n ? 0 : i + 1;
        }
        // Backward shift: a later entry moves into the hole unless its home lies (cyclically) after the hole.
        for (int j = i + 1 == n ? 0 : i + 1; slots[j] != 0; j = j + 1 == n ? 0 : j + 1)
        {
            int home = Home((uint)(slots[j] >> 32), n);
            int fromHome = j >= home ? j - home : j - home + n, fromHole = j >= i ? j - i : j - i + n;
            if (fromHome >= fromHole)
            {
                slots[i] = slots[j];
                i = j;
            }
        }
        slots[i] = 0;
        Count--;
    }

    /// <summary>Forgets every key (keeps the array).</summary>
    public void Clear()
    {
        Array.Clear(_slots);
        Count = 0;
    }
}
