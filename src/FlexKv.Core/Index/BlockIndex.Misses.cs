using FlexKv.Core.Metrics;

namespace FlexKv.Core.Index;

/// <summary>Why a key a lookup stopped at is not readable: what the index knows of it, or remembers of its removal.</summary>
internal sealed partial class BlockIndex
{
    private RemovedKeys? _removed;

    /// <summary>Remembers the last keys that left the index (about <paramref name="entries"/>, a power of two) for <see cref="WhyNotReadable"/>.</summary>
    public void RememberRemovals(int entries) => _removed = new RemovedKeys(entries);

    /// <summary>Why the block of <paramref name="key"/> cannot be offered now (it is not readable in any tier).</summary>
    public NotOfferedReason WhyNotReadable(UInt128 key)
    {
        int id = Lookup(key);
        RemovalCause cause = _removed?.CauseOf(key) ?? RemovalCause.None;
        if (id < 0)
            return cause switch
            {
                RemovalCause.Evicted => NotOfferedReason.Evicted,
                RemovalCause.Dropped => NotOfferedReason.Dropped,
                _ => NotOfferedReason.NotCached,
            };
        ref readonly BlockNode n = ref _nodes[id];
        // Known but not readable: a save (or a tier write) is still running, or every copy went
        // (evicted, or dropped after a failed read) while children kept the node.
        if (n.State == BlockState.Writing || n.Writing != 0) return NotOfferedReason.BeingWritten;
        return cause == RemovalCause.Dropped ? NotOfferedReason.Dropped : NotOfferedReason.Evicted;
    }

    private void RememberRemoval(UInt128 key, RemovalCause cause) => _removed?.Remember(key, cause);
}
