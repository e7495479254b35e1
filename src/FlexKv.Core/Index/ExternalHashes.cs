using FlexKv.Core.Events;

namespace FlexKv.Core.Index;

/// <summary>
/// vLLM's hash of each block (request.block_hashes), per node id, parallel to the node array:
/// what KV events name a block by, since the engine's own keys mean nothing to a router. Set
/// when a request that passed its hashes saves, loads or finds the block; kept as long as the
/// node lives, so an eviction long after the save still names the block as vLLM did. Up to
/// <see cref="KvEvent.MaxHashBytes"/> bytes each (vLLM's sha256 hashes are 32). Owned by the engine lock.
/// </summary>
internal sealed class ExternalHashes
{
    private const int Width = KvEvent.MaxHashBytes;
    private byte[] _bytes;
    private byte[] _lengths;

    public ExternalHashes(int nodes)
    {
        _bytes = new byte[nodes * Width];
        _lengths = new byte[nodes];
    }

    public void Grow(int nodes)
    {
        Array.Resize(ref _bytes, nodes * Width);
        Array.Resize(ref _lengths, nodes);
    }

    public ReadOnlySpan<byte> Of(int node) => _bytes.AsSpan(node * Width, _lengths[node]);

    public void Set(int node, ReadOnlySpan<byte> hash)
    {
        hash.CopyTo(_bytes.AsSpan(node * Width, Width));
        _lengths[node] = (byte)hash.Length;
    }

    /// <summary>A node (re)used for another key knows no hash yet.</summary>
    public void Forget(int node) => _lengths[node] = 0;

    public void Clear() => Array.Clear(_lengths);
}
