namespace FlexKv.Core.Metrics;

/// <summary>One label of a snapshot entry (<c>tier="ssd"</c>).</summary>
internal readonly record struct MetricLabel(string Key, string Value);

/// <summary>
/// One entry of the metrics snapshot: its name (a stats key for the unlabeled ones), kind,
/// one-line meaning and labels. Every entry of one name carries the same label keys, so a sum
/// over the labels counts each event once.
/// </summary>
internal readonly record struct MetricInfo(string Name, MetricKind Kind, string Help, MetricLabel[]? Labels = null)
{
    /// <summary>The labels, empty when there are none.</summary>
    public ReadOnlySpan<MetricLabel> LabelSpan => Labels;
}
