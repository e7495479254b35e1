using FlexKv.Core.Index;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// Rebuilds the index from the SSD journal at start-up, parents first. A block whose parent is
/// not on SSD cannot be reached by a match, so it is dropped and its slot reused (so is a parent
/// loop, which only a forged journal has, and a second slot holding a key already restored).
/// Works on the journal's per-slot arrays with one byte of state per slot, so millions of
/// blocks restore in seconds with little memory beyond the key map the walk needs.
/// </summary>
internal static class SsdRestore
{
    public readonly record struct Result(long Kept, long Orphans);

    private const byte Unseen = 0, OnChain = 1, Kept = 2, Dead = 3;

    public static Result Run(SsdJournal journal, BlockIndex index, int tier, SlotPool pool, bool persist)
    {
        SsdJournalContents c = journal.Contents ?? throw new InvalidOperationException("the SSD journal was started already");
        int slots = c.Kind.Length;
        var state = new byte[slots];
        long orphans = 0, kept = 0;
        if (persist && c.Live > 0)
        {
            // key -> slot of the live blocks; a key held by two slots keeps the first.
            var bySlot = new Dictionary<UInt128, int>(c.Live);
            for (int s = 0; s < slots; s++)
            {
                if (c.Kind[s] == SsdJournalContents.Empty || !journal.Holds(s)) continue;
                if (!bySlot.TryAdd(c.Keys[s], s)) state[s] = Dead;
            }
            index.EnsureCapacity(index.Count + bySlot.Count + index.Capacity);
            long clock = index.Tick();
            var chain = new Stack<int>();
            foreach (int start in bySlot.Values)
            {
                if (state[start] != Unseen) continue;
                chain.Clear();
                int cur = start, parent = -1;
                bool orphan = false;
                while (true)
                {
                    if (state[cur] == Dead || state[cur] == OnChain) { orphan = true; break; } // a loop, or a known dead end
                    state[cur] = OnChain;
                    chain.Push(cur);
                    if (c.Kind[cur] == SsdJournalContents.Root) break;
                    parent = index.Lookup(c.Parents[cur]);
                    if (parent >= 0) break;
                    if (!bySlot.TryGetValue(c.Parents[cur], out cur)) { orphan = true; break; }
                }
                if (orphan)
                {
                    foreach (int s in chain) state[s] = Dead;
                    continue;
                }
                while (chain.Count > 0)
                {
                    int s = chain.Pop();
                    parent = index.InsertFromTier(tier, c.Keys[s], c.Kind[s] == SsdJournalContents.Child ? parent : -1, s, clock);
                    state[s] = Kept;
                    kept++;
                }
            }
            orphans = bySlot.Count - kept;
        }
        var used = new bool[slots];
        for (int s = 0; s < slots; s++)
        {
            if (state[s] == Kept) used[s] = true;
            else journal.Drop(s);
        }
        pool.MarkUsed(used);
        index.RefreshCandidates();
        return new Result(kept, orphans);
    }
}
