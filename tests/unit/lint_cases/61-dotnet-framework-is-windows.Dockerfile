FROM mcr.microsoft.com/dotnet/framework/sdk:4.8 AS build
WORKDIR C:\src
RUN curl.exe -fsSLo nuget.exe https://dl.example.org/nuget/v6/win-x64/nuget.exe
FROM mcr.microsoft.com/dotnet/framework/runtime:4.8
COPY --from=build C:\src\bin C:\app
# expect: none
