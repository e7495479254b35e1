using System.Text.Json;
using System.Text.Json.Serialization;
using FlexKv.Core.Errors;

namespace FlexKv.Core.Config;

/// <summary>Source-generated (AOT-safe) JSON contract of <see cref="EngineOptions"/>; unknown keys are errors.</summary>
[JsonSourceGenerationOptions(UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(EngineOptions))]
internal sealed partial class EngineOptionsJsonContext : JsonSerializerContext;

/// <summary>Parses and validates the configuration document.</summary>
internal static class EngineOptionsJson
{
    /// <summary>Parses UTF-8 JSON into validated options; every problem is an <see cref="FlexKvStatus.InvalidConfig"/> error.</summary>
    public static EngineOptions Parse(ReadOnlySpan<byte> utf8Json)
    {
        EngineOptions? options;
        try
        {
            options = JsonSerializer.Deserialize(utf8Json, EngineOptionsJsonContext.Default.EngineOptions);
        }
        catch (JsonException ex)
        {
            throw new FlexKvException(FlexKvStatus.InvalidConfig, $"invalid configuration JSON: {ex.Message}", ex);
        }
        if (options is null)
            throw new FlexKvException(FlexKvStatus.InvalidConfig, "configuration JSON must be an object, got null");
        EngineOptionsValidator.Validate(options);
        return options;
    }

    /// <summary>Parses a JSON string (tests and tools).</summary>
    public static EngineOptions Parse(string json) => Parse(System.Text.Encoding.UTF8.GetBytes(json));
}
