/** The local Bedrock batch inference emulator: see {@link BedrockEmulator}. */
export * from './bedrock-emulator';
