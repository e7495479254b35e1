using FlexKv.Core.Tiers.Remote;

namespace FlexKv.Redis;

/// <summary>
/// EXISTS commands in flight for a run of keys; complete as soon as the leading run is known
/// (the first key answered "absent", or every key answered "present"). A failed command counts
/// as absent: the block is recomputed instead of loaded.
/// </summary>
internal sealed class PresenceLookup(Task<bool>[] tasks) : IRemoteLookup
{
    private int _known; // leading tasks already seen completed and true (only grows)

    public bool IsCompleted
    {
        get
        {
            Advance();
            int k = Volatile.Read(ref _known);
            return k == tasks.Length || tasks[k].IsCompleted;
        }
    }

    public int Present
    {
        get
        {
            Advance();
            return Volatile.Read(ref _known);
        }
    }

    private void Advance()
    {
        int k = Volatile.Read(ref _known);
        while (k < tasks.Length && tasks[k].IsCompletedSuccessfully && tasks[k].Result) k++;
        Volatile.Write(ref _known, k);
    }
}
