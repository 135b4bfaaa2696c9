# syntax=docker/dockerfile:1
# Build: docker build -t outbox-relay .
# Run:   docker run --rm -v $PWD/relay.properties:/config/relay.properties outbox-relay run

FROM maven:3.9-eclipse-temurin-17 AS build
WORKDIR /src
COPY pom.xml ./
COPY test-support/pom.xml test-support/
COPY offset-store/pom.xml offset-store/
COPY transforms/pom.xml transforms/
COPY connector/pom.xml connector/
# Dependencies first, so that a code change does not download them again.
RUN mvn -B -q dependency:go-offline -DexcludeArtifactIds=outbox-relay-offset-store,outbox-relay-transforms,outbox-relay-test-support || true
COPY . .
RUN mvn -B -q package -DskipTests

FROM eclipse-temurin:17-jre-alpine
RUN addgroup -S relay && adduser -S -G relay -u 10001 relay
WORKDIR /opt/outbox-relay
COPY --from=build /src/connector/target/outbox-relay.jar lib/outbox-relay.jar
COPY bin/outbox-relay bin/outbox-relay
USER 10001
ENV OUTBOX_RELAY_CONFIG=/config/relay.properties
EXPOSE 8080
ENTRYPOINT ["/opt/outbox-relay/bin/outbox-relay"]
CMD ["run"]
