namespace FlexKv.Core.Tiers.Remote;

/// <summary>
/// Stops asking a remote store that answered a lookup late, until it recovers: after a late
/// answer no lookup is started for a cool-down (1 s, doubling to 30 s while the store stays
/// slow); then one request's lookup probes it, and an answer in time closes the breaker. While
/// it is open, requests are answered from the local tiers at once instead of waiting out the
/// lookup budget. Owned by the engine lock.
/// </summary>
internal sealed class LookupBreaker
{
    private const long MinCooldownMs = 1_000, MaxCooldownMs = 30_000;
    private long _openUntilMs = -1;   // -1: closed
    private long _cooldownMs = MinCooldownMs;
    private bool _probing;            // half-open: one lookup in flight decides

    /// <summary>Whether lookups are being skipped now.</summary>
    public bool IsOpen(long nowMs) => _openUntilMs >= 0 && (nowMs < _openUntilMs || _probing);

    /// <summary>Whether a new lookup may start now; when half-open only one may, the <paramref name="probe"/>.</summary>
    public bool TryStart(long nowMs, out bool probe)
    {
        probe = false;
        if (_openUntilMs < 0) return true;
        if (nowMs < _openUntilMs || _probing) return false;
        _probing = probe = true;
        return true;
    }

    /// <summary>A lookup was answered within its budget: the store is well again.</summary>
    public void Answered()
    {
        _openUntilMs = -1;
        _cooldownMs = MinCooldownMs;
        _probing = false;
    }

    /// <summary>
    /// A lookup outran its budget: open the breaker. A late probe opens it again for twice as
    /// long; lookups started before it opened (many requests arrive in one step) only keep it open.
    /// </summary>
    public void Late(long nowMs, bool probe)
    {
        if (probe)
        {
            _cooldownMs = Math.Min(_cooldownMs * 2, MaxCooldownMs);
            _probing = false;
        }
        else if (_openUntilMs >= 0) return;
        _openUntilMs = nowMs + _cooldownMs;
    }

    /// <summary>A probe was abandoned without an answer (its request went away): allow another.</summary>
    public void Abandoned() => _probing = false;
}
