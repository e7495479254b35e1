using FlexKv.Core.Events;
using FlexKv.Core.Metrics;

namespace FlexKv.Core.Index;

/// <summary>
/// KV events: the index records a block becoming readable in a tier or losing its copy there
/// as it happens (the only place that sees every such change), named by vLLM's hash of the
/// block. Off unless enabled: then each change costs one null check.
/// </summary>
internal sealed partial class BlockIndex
{
    private KvEventRing? _events;
    private ExternalHashes? _hashes;
    private EngineMetrics? _eventMetrics;

    /// <summary>Records KV events into <paramref name="ring"/> from now on (blocks that never got a vLLM hash are counted, not recorded).</summary>
    public void EnableEvents(KvEventRing ring, EngineMetrics metrics)
    {
        AssertOwned();
        _events = ring;
        _eventMetrics = metrics;
        _hashes ??= new ExternalHashes(_nodes.Length);
    }

    /// <summary>Whether KV events are recorded (and vLLM hashes kept).</summary>
    public bool EventsEnabled => _events is not null;

    /// <summary>Gives <paramref name="node"/> vLLM's hash of its block (no-op when events are off or no hash is known).</summary>
    public void SetExternalHash(int node, ReadOnlySpan<byte> hash)
    {
        if (_hashes is not null && !hash.IsEmpty) _hashes.Set(node, hash);
    }

    /// <summary>vLLM's hash of a node's block (empty when not known).</summary>
    public ReadOnlySpan<byte> ExternalHashOf(int node) => _hashes is null ? default : _hashes.Of(node);

    /// <summary>A hint tier (no slots, so no index write) stored the block: it is readable there now.</summary>
    public void NoteTierStored(int node, int tier) => Emit(KvEventKind.Stored, _tiers[tier].Label, node);

    // Inlined where the index changes: with events off, only the null check stays on that path.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void Emit(KvEventKind kind, MetricTier tier, int node)
    {
        if (_events is not null) Record(kind, tier, node);
    }

    private unsafe void Record(KvEventKind kind, MetricTier tier, int node)
    {
        if (tier == MetricTier.None || _events is null) return;
        ReadOnlySpan<byte> hash = _hashes!.Of(node);
        if (hash.IsEmpty)
        {
            _eventMetrics!.EventUnhashed();
            return;
        }
        ref KvEvent e = ref _events.Add();
        e.Kind = kind;
        e.Medium = (byte)tier;
        e.HashLength = (byte)hash.Length;
        fixed (byte* h = e.Hash) hash.CopyTo(new Span<byte>(h, KvEvent.MaxHashBytes));
        int parent = _nodes[node].Parent;
        if (kind != KvEventKind.Stored || parent < 0) return; // BlockRemoved names no parent
        ReadOnlySpan<byte> p = _hashes.Of(parent);
        e.ParentLength = (byte)p.Length;
        fixed (byte* ph = e.Parent) p.CopyTo(new Span<byte>(ph, KvEvent.MaxHashBytes));
    }

    private void EmitCleared()
    {
        if (_events is null) return;
        _events.Add().Kind = KvEventKind.Cleared;
    }
}
