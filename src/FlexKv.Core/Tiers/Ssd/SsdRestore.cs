using FlexKv.Core.Index;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// Rebuilds the index from the SSD journal at start-up, parents first. A block whose parent is
/// not on SSD cannot be reached by a match, so it is dropped and its slot reused (so is a parent
/// loop, which only a forged journal has).
/// </summary>
internal static class SsdRestore
{
    public readonly record struct Result(long Kept, long Orphans);

    public static Result Run(SsdJournal journal, BlockIndex index, int tier, SlotPool pool, bool persist)
    {
        var byKey = new Dictionary<UInt128, SsdRecord>();
        if (persist)
            foreach (SsdRecord? r in journal.Slots)
                if (r is { } rec) byKey.TryAdd(rec.Key, rec);
        var used = new bool[pool.Capacity];
        var kept = new List<SsdRecord>(byKey.Count);
        var chain = new Stack<SsdRecord>();
        var onChain = new HashSet<UInt128>();
        var dead = new HashSet<UInt128>(); // keys known not to reach a root: each record is walked about once
        long clock = index.Tick();
        foreach (SsdRecord rec in byKey.Values)
        {
            chain.Clear();
            onChain.Clear();
            SsdRecord cur = rec;
            int parent = -1;
            bool orphan = false;
            while (index.Lookup(cur.Key) < 0)
            {
                // A key seen twice on one walk: the parents loop (a forged journal) and reach no root.
                if (dead.Contains(cur.Key) || !onChain.Add(cur.Key)) { orphan = true; break; }
                chain.Push(cur);
                if (!cur.HasParent) break;
                parent = index.Lookup(cur.Parent);
                if (parent >= 0) break;
                if (!byKey.TryGetValue(cur.Parent, out cur)) { orphan = true; break; }
            }
            if (orphan)
            {
                foreach (SsdRecord c in chain) dead.Add(c.Key);
                continue;
            }
            while (chain.Count > 0)
            {
                SsdRecord r = chain.Pop();
                parent = index.InsertFromTier(tier, r.Key, r.HasParent ? parent : -1, r.Slot, clock);
                used[r.Slot] = true;
                kept.Add(r);
            }
        }
        pool.MarkUsed(used);
        index.RefreshCandidates();
        journal.Keep(kept);
        return new Result(kept.Count, persist ? byKey.Count - kept.Count : 0);
    }
}
