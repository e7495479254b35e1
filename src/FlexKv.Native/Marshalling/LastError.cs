using FlexKv.Core.Errors;

namespace FlexKv.Native.Marshalling;

/// <summary>The calling thread's last error message (<c>flexkv_last_error</c>).</summary>
internal static class LastError
{
    [ThreadStatic] private static string? t_message;

    public static string Message => t_message ?? "";

    /// <summary>Records an exception and returns its status code.</summary>
    public static int Set(Exception ex)
    {
        FlexKvStatus status = FlexKvException.StatusOf(ex);
        t_message = status == FlexKvStatus.Internal ? $"internal error: {ex.GetType().Name}: {ex.Message}" : ex.Message;
        return (int)status;
    }

    /// <summary>Records a message for a status detected while marshalling.</summary>
    public static int Set(FlexKvStatus status, string message)
    {
        t_message = message;
        return (int)status;
    }

    public static void Clear() => t_message = null;
}
