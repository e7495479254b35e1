namespace FlexKv.Core.Index;

/// <summary>A block's presence in the SSD tier.</summary>
public enum SsdState : byte
{
    /// <summary>Not on SSD.</summary>
    None = 0,
    /// <summary>Being written; not readable yet.</summary>
    Writing = 1,
    /// <summary>On SSD and readable.</summary>
    Ready = 2,
}
