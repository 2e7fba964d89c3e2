// @peculiar/x509, loaded after reflect-metadata (its dependency injection reads decorator metadata): import it
// from here, never directly, so that the order holds in every module graph and in the bundle.

import 'reflect-metadata';

export * from '@peculiar/x509';
