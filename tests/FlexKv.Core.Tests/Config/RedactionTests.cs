using FlexKv.Core.Config;

namespace FlexKv.Core.Tests.Config;

public class RedactionTests
{
    [Theory]
    [InlineData("redis://user:pw@h:6379", "redis://user:***@h:6379")]
    [InlineData("redis://:pw@h:6379/2", "redis://:***@h:6379/2")]
    [InlineData("rediss://pw@h:6380", "rediss://***@h:6380")] // a lone user-info part is the password
    [InlineData("redis://h:6379", "redis://h:6379")]
    [InlineData("redis://a:p1@h1:1,redis://b:p2@h2:2", "redis://a:***@h1:1,redis://b:***@h2:2")]
    [InlineData("redis://h:1?password=pw&db=2", "redis://h:1?password=***&db=2")]
    [InlineData("", "")]
    public void RedactUrl_MasksPasswordsOnly(string url, string expected) => Assert.Equal(expected, Redaction.RedactUrl(url));

    [Theory]
    [InlineData("redis://:p@ss@h:1", "p@ss")]    // '@' inside the password
    [InlineData("redis://:pa,ss@h:1", "pa,ss")]  // ',' inside: not a second URL
    [InlineData("redis://:a://b@h:1", "a://b")]  // "://" inside
    [InlineData("redis//:hunter2@h", "hunter2")] // malformed scheme
    public void RedactUrl_MalformedUrls_LeakNoPartOfThePassword(string url, string password)
    {
        string redacted = Redaction.RedactUrl(url);
        foreach (string part in password.Split('@', ',', ':', '/'))
            if (part.Length > 1) Assert.DoesNotContain(part, redacted);
    }

    [Fact]
    public void Scrub_ReplacesEveryOccurrence() =>
        Assert.Equal("auth *** failed (***)", Redaction.Scrub("auth hunter2 failed (hunter2)", "hunter2"));
}
