using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text.Json;
using FlexKv.Native.Marshalling;

namespace FlexKv.Native.Exports;

/// <summary>What this build of the library is: ABI, commit, build time, runtime, CPU features. Marshalling only.</summary>
internal static unsafe class BuildExports
{
    private static readonly Lazy<byte[]> s_json = new(BuildJson);

    [UnmanagedCallersOnly(EntryPoint = "flexkv_build_info")]
    public static int BuildInfo(byte* buffer, nuint capacity, nuint* needed)
    {
        try
        {
            return Args.WriteText(s_json.Value, buffer, capacity, needed);
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    // build.sh embeds the commit and the build time as assembly metadata (FlexKv.Native.csproj);
    // a build without them (dotnet build, the tests) says "unknown".
    private static string Metadata(string key) =>
        typeof(BuildExports).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == key)?.Value is { Length: > 0 } v ? v : "unknown";

    private static byte[] BuildJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("abi_version", CommonExports.AbiVersion);
            w.WriteString("git_sha", Metadata("FlexKvGitSha"));
            w.WriteString("build_date", Metadata("FlexKvBuildDate"));
            w.WriteString("instruction_set", Metadata("FlexKvInstructionSet"));
            w.WriteString("dotnet_runtime", RuntimeInformation.FrameworkDescription);
            w.WriteString("runtime_identifier", RuntimeInformation.RuntimeIdentifier);
            w.WriteBoolean("native_aot", !System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported);
            // What the compiled code may use: the instruction set it was built for, and the wider
            // vectors the runtime found on this CPU (used where the libraries have such paths).
            w.WriteStartObject("cpu_features");
            w.WriteBoolean("avx2", Avx2.IsSupported);
            w.WriteBoolean("bmi2", Bmi2.IsSupported);
            w.WriteBoolean("fma", Fma.IsSupported);
            w.WriteBoolean("avx512f", Avx512F.IsSupported);
            w.WriteBoolean("vector256", Vector256.IsHardwareAccelerated);
            w.WriteBoolean("vector512", Vector512.IsHardwareAccelerated);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }
}
