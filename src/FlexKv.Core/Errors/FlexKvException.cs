namespace FlexKv.Core.Errors;

/// <summary>An engine error carrying the status code that crosses the C ABI.</summary>
internal class FlexKvException : Exception
{
    /// <summary>Creates an exception with a status and a message meant for the user.</summary>
    public FlexKvException(FlexKvStatus status, string message) : base(message) => Status = status;

    /// <summary>Creates an exception that wraps a lower-level cause.</summary>
    public FlexKvException(FlexKvStatus status, string message, Exception inner) : base(message, inner) => Status = status;

    /// <summary>The status code reported through the C ABI.</summary>
    public FlexKvStatus Status { get; }

    /// <summary>Maps any exception to the status reported through the C ABI.</summary>
    public static FlexKvStatus StatusOf(Exception ex) => ex switch
    {
        FlexKvException f => f.Status,
        ArgumentException => FlexKvStatus.InvalidArgument,
        ObjectDisposedException => FlexKvStatus.ShutDown,
        OutOfMemoryException => FlexKvStatus.OutOfMemory,
        IOException => FlexKvStatus.IoError,
        _ => FlexKvStatus.Internal,
    };
}
