namespace FlexKv.Core.Transfer;

/// <summary>A slice [Start, Start+Count) of a task, the unit a copy thread takes.</summary>
internal readonly record struct CopyWork(TransferTask Task, int Start, int Count);
