using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace FlexKv.Core.Errors;

/// <summary>Throw sites kept out of hot methods so those stay small and inlinable.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Throw(FlexKvStatus status, string message) => throw new FlexKvException(status, message);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void UnknownRequest(string requestId) =>
        throw new FlexKvException(FlexKvStatus.UnknownRequest, $"unknown request id '{requestId}'");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ShutDown() => throw new FlexKvException(FlexKvStatus.ShutDown, "the engine was shut down");
}
