using FlexKv.Core.Errors;
using FlexKv.Core.Tiers.Ssd;
using static FlexKv.Core.Tiers.Ssd.SsdSpace;

namespace FlexKv.Core.Tests.Tiers.Ssd;

/// <summary>The free-space rule on made-up filesystems: what must be free is what the files do not hold yet, per filesystem.</summary>
public class SsdSpaceTests
{
    private const long Gib = 1L << 30;

    [Fact]
    public void AFileBeingReopened_IsNotCountedAgainstItself()
    {
        Assert.Null(Shortfall(10, [new FileSpace("/a", 1, 10 * Gib, 10 * Gib, 1 * Gib)]));
        Assert.Null(Shortfall(12, [new FileSpace("/a", 1, 12 * Gib, 10 * Gib, 2 * Gib)])); // grows by what is free
        Assert.NotNull(Shortfall(12, [new FileSpace("/a", 1, 12 * Gib, 10 * Gib, 2 * Gib - 1)]));
    }

    [Fact]
    public void FilesOnOneFilesystem_AddUp_FilesOnTwoDoNot()
    {
        string? why = Shortfall(12, [new FileSpace("/a", 1, 6 * Gib, 0, 10 * Gib), new FileSpace("/b", 1, 6 * Gib, 0, 10 * Gib)]);
        Assert.NotNull(why);
        Assert.Contains("12 GiB needs 12884901888 bytes more in '/a', '/b' but only 10737418240 bytes (10 GiB) are free", why);
        Assert.Null(Shortfall(12, [new FileSpace("/a", 1, 6 * Gib, 0, 10 * Gib), new FileSpace("/b", 2, 6 * Gib, 0, 10 * Gib)]));
    }

    [Fact]
    public void ASmallerSize_NeedsNothing()
    {
        Assert.Null(Shortfall(1, [new FileSpace("/a", 1, 1 * Gib, 50 * Gib, 0)]));
    }

    [Theory]
    [InlineData(1e308)]
    [InlineData(double.MaxValue)]
    public void HugeSizes_AreAConfigError_NotAnOverflow(double gb)
    {
        string dir = Directory.CreateTempSubdirectory("flexkv-space-").FullName;
        try
        {
            var e = Assert.Throws<FlexKvException>(() => Plan(gb, 4096, [dir]));
            Assert.Equal(FlexKvStatus.InvalidConfig, e.Status);
            Assert.Contains("configuration key 'ssd_cache_gb'", e.Message);
            Assert.Contains("over 8 EiB more", e.Message);
            Assert.False(File.Exists(Path.Combine(dir, BlocksFile)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void LessThanOneBlock_IsAConfigError()
    {
        var e = Assert.Throws<FlexKvException>(() => Plan(1.0 / Gib, 8192, ["/nonexistent"]));
        Assert.Contains("holds no block of 8192 bytes", e.Message);
    }
}
